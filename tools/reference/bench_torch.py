"""Time PyTorch on the default AHMSA-Net: the baseline the C++ framework is compared with.

Measurements (median over --steps timed iterations after --warmup untimed ones):
    train step  = forward + mean cross-entropy + backward + AdamW step, training mode, per batch size
    eval        = batch-1 forward in eval mode under torch.inference_mode (latency)
Output, one line per measurement, space-separated key=value after three fixed words:
    torch <device> threads=<n> compile=<0|1> train batch=<b> ms=<median ms/step> samples_per_s=<b*1000/ms> min_ms=<fastest> cpu_ms=<c>
    torch <device> threads=<n> compile=<0|1> eval batch=1 ms=<median ms> samples_per_s=<1000/ms> min_ms=<fastest> cpu_ms=<c>
cpu_ms is the median process CPU time per iteration (all threads summed). Lines starting with '#'
are comments (the load average before and after: the machine is shared, so check it was quiet).

    python3 tools/reference/bench_torch.py --threads 2 [--device cpu|cuda] [--compile]
        [--batches 64,256] [--steps 20] [--warmup 3]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ahmsa_torch import AHMSANet  # noqa: E402
from bench_util import median_ms, print_load, sync  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="PyTorch AHMSA-Net timing")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave default)")
    ap.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-steps", type=int, default=100)
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_torch: --device cuda but torch.cuda.is_available() is false")
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    tag = f"torch {args.device} threads={threads} compile={int(args.compile)}"
    print_load()

    torch.manual_seed(0)
    model = AHMSANet().to(device)
    run = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)

    for batch in [int(b) for b in args.batches.split(",") if b]:
        x = torch.rand(batch, 3, 28, 28, device=device)
        y = torch.randint(0, 3, (batch,), device=device)
        model.train()

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(run(x), y)
            loss.backward()
            opt.step()

        ms, min_ms, cpu_ms = median_ms(train_step, device, args.warmup, args.steps)
        print(f"{tag} train batch={batch} ms={ms:.3f} samples_per_s={batch * 1000.0 / ms:.1f} "
              f"min_ms={min_ms:.3f} cpu_ms={cpu_ms:.3f}", flush=True)

    model.eval()
    x1 = torch.rand(1, 3, 28, 28, device=device)

    def eval_one():
        with torch.inference_mode():
            run(x1)

    ms, min_ms, cpu_ms = median_ms(eval_one, device, max(args.warmup, 10), args.eval_steps)
    print(f"{tag} eval batch=1 ms={ms:.3f} samples_per_s={1000.0 / ms:.1f} "
          f"min_ms={min_ms:.3f} cpu_ms={cpu_ms:.3f}", flush=True)
    print_load()


if __name__ == "__main__":
    main()
