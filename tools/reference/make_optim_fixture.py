"""Write tests/fixtures/optim.safetensors: optimiser trajectories and LR schedules from PyTorch.

Problem: x [8,5], y [8,3], parameters W [3,5], b [3]; loss = mean((x W^T + b - y)^2) over all 24
entries. Each optimiser starts from W0, b0 and takes 5 steps (one full-batch gradient per step).

Keys:
    x, y, W0, b0                 the problem (float32, exactly what was used)
    loss0, gradW0, gradb0        loss and its gradient at W0, b0
    <opt>/W_step{k}, <opt>/b_step{k}, k = 1..5, <opt> in adamw, adam, sgd
    sched/cosine_warmup [100]    LR at steps 0..99 (formula in metadata)
    sched/onecycle      [100]    torch.optim.lr_scheduler.OneCycleLR LR at steps 0..99
Metadata: one entry per optimiser / schedule with its hyper-parameters, "key=value;..." form
(values never contain ';' or '='). The update rules and schedule formulas:

    AdamW (decoupled): p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
                       p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)        (t = 1, 2, ...)
    Adam (L2):         g += wd*p, then the same m, v, p update (no p *= 1 - lr*wd)
    SGD:               g += wd*p; buf = g at step 1, else momentum*buf + g; p -= lr*buf
    cosine_warmup:     lr(t) = base*t/W for t < W; base*0.5*(1 + cos(pi*(t-W)/(T-W))) for W <= t < T
                       (base 1e-3, W 10, T 100; t = 0..99; lr(0) = 0, lr(10) = base)
    onecycle:          start = max_lr/div_factor, final = start/final_div_factor,
                       up = pct_start*T - 1 (= 29), down = T - 1 (= 99),
                       anneal(a, b, p) = b + (a-b)/2 * (1 + cos(pi*p));
                       lr(t) = anneal(start, max_lr, t/up) for t <= up,
                               anneal(max_lr, final, (t-up)/(down-up)) after; t = 0..99 is the LR
                       in use for the t-th optimiser step.

Computed in float64, stored as float32.

    python3 tools/reference/make_optim_fixture.py [--out tests/fixtures/optim.safetensors]
"""
import argparse
import math
import os

import torch
from st_io import save_sorted

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures", "optim.safetensors"))
STEPS = 5

OPTIMISERS = {
    # name: (constructor, metadata)
    "adamw": (lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
              "class=AdamW;lr=0.01;beta1=0.9;beta2=0.999;eps=1e-8;weight_decay=0.1;decoupled=1;amsgrad=0"),
    "adam": (lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
             "class=Adam;lr=0.01;beta1=0.9;beta2=0.999;eps=1e-8;weight_decay=0.01;decoupled=0;amsgrad=0"),
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.01,
                                      nesterov=False),
            "class=SGD;lr=0.05;momentum=0.9;dampening=0;weight_decay=0.01;nesterov=0"),
}

COSINE_BASE, COSINE_WARMUP, COSINE_TOTAL = 1e-3, 10, 100


def cosine_warmup(t):
    """Linear warm-up from 0 (t = 0) towards base, reaching base at t = W, then half-cosine to 0 at t = T."""
    if t < COSINE_WARMUP:
        return COSINE_BASE * t / COSINE_WARMUP
    return COSINE_BASE * 0.5 * (1.0 + math.cos(math.pi * (t - COSINE_WARMUP) / (COSINE_TOTAL - COSINE_WARMUP)))


def onecycle_lrs(total=100):
    dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([dummy], lr=1e-2, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=total, pct_start=0.3,
                                                anneal_strategy="cos", div_factor=25.0,
                                                final_div_factor=1e4, three_phase=False)
    lrs = []
    for t in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if t + 1 < total:
            sched.step()
    return lrs


def onecycle_formula(t, total=100):
    """The same schedule written out (checked against PyTorch below)."""
    max_lr = 1e-2
    start = max_lr / 25.0
    final = start / 1e4
    up_end = 0.3 * total - 1          # the step at which max_lr is reached (29 here)
    down_end = total - 1
    cos_anneal = lambda a, b, pct: b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
    if t <= up_end:
        return cos_anneal(start, max_lr, t / up_end)
    return cos_anneal(max_lr, final, (t - up_end) / (down_end - up_end))


def loss_fn(x, y, W, b):
    return ((x @ W.t() + b - y) ** 2).mean()


def build():
    torch.manual_seed(0)
    x, y = torch.randn(8, 5), torch.randn(8, 3)
    W0, b0 = torch.randn(3, 5) * 0.5, torch.randn(3) * 0.5
    tensors = {"x": x, "y": y, "W0": W0, "b0": b0}
    metadata = {"problem": "loss=mean_squared_error;x=8x5;y=8x3;W=3x5;b=3;steps=5"}
    x64, y64 = x.double(), y.double()
    W = W0.double().requires_grad_(True)
    b = b0.double().requires_grad_(True)
    loss = loss_fn(x64, y64, W, b)
    gW, gb = torch.autograd.grad(loss, [W, b])
    tensors.update({"loss0": loss.detach().float(), "gradW0": gW.float(), "gradb0": gb.float()})

    for name, (make, meta) in OPTIMISERS.items():
        W = W0.double().clone().requires_grad_(True)
        b = b0.double().clone().requires_grad_(True)
        opt = make([W, b])
        for step in range(1, STEPS + 1):
            opt.zero_grad()
            loss_fn(x64, y64, W, b).backward()
            opt.step()
            tensors[f"{name}/W_step{step}"] = W.detach().float().clone()
            tensors[f"{name}/b_step{step}"] = b.detach().float().clone()
        metadata[name] = meta

    cos = [cosine_warmup(t) for t in range(COSINE_TOTAL)]
    tensors["sched/cosine_warmup"] = torch.tensor(cos, dtype=torch.float64).float()
    metadata["sched/cosine_warmup"] = (
        f"kind=linear_warmup_cosine;base={COSINE_BASE};warmup={COSINE_WARMUP};total={COSINE_TOTAL};min_lr=0")

    one = onecycle_lrs(100)
    for t, lr in enumerate(one):
        assert abs(lr - onecycle_formula(t)) < 1e-12 * 1e-2, (t, lr, onecycle_formula(t))
    tensors["sched/onecycle"] = torch.tensor(one, dtype=torch.float64).float()
    metadata["sched/onecycle"] = (
        "class=OneCycleLR;max_lr=0.01;total_steps=100;pct_start=0.3;anneal_strategy=cos;div_factor=25;"
        "final_div_factor=1e4;three_phase=0")
    return tensors, metadata


def main():
    ap = argparse.ArgumentParser(description="write the optimiser / schedule fixture")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    tensors, metadata = build()
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert v.dtype == torch.float32, k
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_sorted(tensors, args.out, metadata=metadata)
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
