"""Time PyTorch conv2d (forward, forward+backward) at AHMSA-Net's layer shapes and a square sgemm.

FLOP counts (multiply-add = 2 FLOP):
    conv forward       2 * N * C_out * H_out * W_out * C_in * k * k
    conv fwd+bwd       3 * forward (forward, input gradient, weight gradient; bias ignored)
    sgemm M=N=K=1024   2 * M * N * K
Output, one line per measurement:
    torch <device> threads=<n> conv2d name=<name> batch=<N> pass=<fwd|fwd+bwd> ms=<median> gflops=<GFLOP/s> min_ms=<fastest> cpu_ms=<c>
    torch <device> threads=<n> sgemm m=1024 n=1024 k=1024 ms=<median> gflops=<GFLOP/s> min_ms=<fastest> cpu_ms=<c>
gflops uses the wall-clock median; cpu_ms is the median process CPU time (all threads summed).
Lines starting with '#' are comments (load average before and after).

    python3 tools/reference/bench_torch_ops.py --threads 2 [--device cpu|cuda] [--batch 64] [--steps 10]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import median_ms, print_load, sync  # noqa: E402

# name, C_in, C_out, spatial size, kernel (stride 1, padding k//2, so output size = input size)
CONVS = [
    ("stem_3to32_28", 3, 32, 28, 3),
    ("down_32to64_14", 32, 64, 14, 3),
    ("down_64to128_7", 64, 128, 7, 3),
    ("down_128to256_4", 128, 256, 4, 3),
    ("spatial_2to1_k3_14", 2, 1, 14, 3),
    ("spatial_2to1_k5_14", 2, 1, 14, 5),
    ("spatial_2to1_k7_14", 2, 1, 14, 7),
]


def main():
    ap = argparse.ArgumentParser(description="PyTorch conv2d / sgemm throughput")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_torch_ops: --device cuda but torch.cuda.is_available() is false")
    device = torch.device(args.device)
    tag = f"torch {args.device} threads={torch.get_num_threads()}"
    print_load()
    torch.manual_seed(0)
    n = args.batch

    for name, cin, cout, size, k in CONVS:
        x = torch.randn(n, cin, size, size, device=device, requires_grad=True)
        w = torch.randn(cout, cin, k, k, device=device, requires_grad=True)
        b = torch.randn(cout, device=device, requires_grad=True)
        gout = torch.randn(n, cout, size, size, device=device)
        flop = 2.0 * n * cout * size * size * cin * k * k

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, padding=k // 2)

        def fwd_bwd():
            y = F.conv2d(x, w, b, padding=k // 2)
            torch.autograd.grad(y, [x, w, b], gout)

        for label, fn, total in (("fwd", fwd, flop), ("fwd+bwd", fwd_bwd, 3 * flop)):
            ms, min_ms, cpu_ms = median_ms(fn, device, args.warmup, args.steps)
            print(f"{tag} conv2d name={name} batch={n} pass={label} ms={ms:.3f} gflops={total / ms / 1e6:.2f} "
                  f"min_ms={min_ms:.3f} cpu_ms={cpu_ms:.3f}", flush=True)

    m = 1024
    a = torch.randn(m, m, device=device)
    bm = torch.randn(m, m, device=device)
    ms, min_ms, cpu_ms = median_ms(lambda: torch.mm(a, bm), device, args.warmup, args.steps)
    print(f"{tag} sgemm m={m} n={m} k={m} ms={ms:.3f} gflops={2.0 * m ** 3 / ms / 1e6:.2f} "
          f"min_ms={min_ms:.3f} cpu_ms={cpu_ms:.3f}", flush=True)
    print_load()


if __name__ == "__main__":
    main()
