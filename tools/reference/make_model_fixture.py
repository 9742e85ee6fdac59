"""Write tests/fixtures/model_parity.safetensors: AHMSA-Net forward, gradients and 3 AdamW steps.

Default config (S 28, stem 32, channels (64,128,256), L 3, K 3). Weights from torch.manual_seed(0)
(float32), then every BatchNorm running_mean ~ N(0, 0.1) and running_var ~ U(0.5, 1.5), so eval mode
is not the identity. Everything is then computed in float64 (model.double()) and stored as float32.

Keys (float32 unless noted):
    input [4,3,28,28]            smooth random fields, each channel of each sample min-max scaled to [0,1]
    labels int64 [4]
    w/<name>                     initial value of every parameter and BN running_mean / running_var
                                 (the spec's names; num_batches_tracked is not stored)
    eval/logits [4,3]            eval mode, initial weights and running statistics
    train/logits [4,3]           training mode (batch statistics), dropout probability 0
    train/loss []                mean cross-entropy of train/logits against labels
    grad/<param>                 d train/loss / d param, for every parameter
    step3/loss1..3 []            the training loss at each of 3 AdamW steps, before its update
                                 (step3/loss1 == train/loss)
    step3/<name>                 every parameter and BN running buffer after the 3rd step; the running
                                 buffers have been updated by exactly 3 training forwards starting
                                 from w/ (momentum 0.1, unbiased variance)
Each AdamW step: zero grads, training forward on the same batch, mean cross-entropy, backward,
AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.05 on every parameter).

    python3 tools/reference/make_model_fixture.py [--out tests/fixtures/model_parity.safetensors]
        [--check-float32]   also repeat the run in float32 and print how far it lands from the
                            float64 answer (a guide to the tolerances a float32 port can meet)
"""
import argparse
import copy
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ahmsa_torch import AHMSANet, check_against_spec, parameter_count  # noqa: E402
from st_io import save_sorted  # noqa: E402

DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures", "model_parity.safetensors"))
BATCH, SIZE, CLASSES, STEPS = 4, 28, 3, 3
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)


def smooth_fields(n, size):
    """Smooth random maps: coarse 4x4 and 7x7 noise bilinearly upsampled plus a little fine noise,
    then min-max normalised per (sample, channel) as the spec's input is."""
    coarse = F.interpolate(torch.randn(n, 3, 4, 4), size=(size, size), mode="bilinear", align_corners=False)
    mid = F.interpolate(torch.randn(n, 3, 7, 7), size=(size, size), mode="bilinear", align_corners=False)
    x = coarse + 0.5 * mid + 0.05 * torch.randn(n, 3, size, size)
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    return ((x - lo) / (hi - lo)).float()


def initial_model():
    torch.manual_seed(0)
    model = AHMSANet(size=SIZE, classes=CLASSES)
    check_against_spec(model, size=SIZE, classes=CLASSES)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(0.1 * torch.randn(mod.num_features))
                mod.running_var.copy_(0.5 + torch.rand(mod.num_features))
    x = smooth_fields(BATCH, SIZE)
    labels = torch.randint(0, CLASSES, (BATCH,), dtype=torch.int64)
    return model, x, labels


def stored_state(model):
    """Parameters and BN running statistics, by spec name (num_batches_tracked dropped)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def run(model, x, labels, dtype):
    """Evaluate everything the fixture holds, with model and input in `dtype`. Returns {key: tensor}."""
    model = copy.deepcopy(model).to(dtype)
    x = x.to(dtype)
    out = {}
    evaluator = copy.deepcopy(model).eval()
    with torch.no_grad():
        out["eval/logits"] = evaluator(x)
    model.train()
    model.dropout.p = 0.0
    opt = torch.optim.AdamW(model.parameters(), **ADAMW)
    for step in range(1, STEPS + 1):
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        if step == 1:
            out["train/logits"] = logits.detach().clone()
            out["train/loss"] = loss.detach().clone()
            for name, p in model.named_parameters():
                out[f"grad/{name}"] = p.grad.detach().clone()
        out[f"step3/loss{step}"] = loss.detach().clone()
        opt.step()
    for name, v in stored_state(model).items():
        out[f"step3/{name}"] = v
    return out


def main():
    ap = argparse.ArgumentParser(description="write the model parity fixture")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check-float32", action="store_true")
    args = ap.parse_args()

    model, x, labels = initial_model()
    print(f"parameters: {parameter_count(model)}; labels {labels.tolist()}")
    tensors = {"input": x, "labels": labels}
    for name, v in stored_state(model).items():
        tensors[f"w/{name}"] = v.float()
    ref = run(model, x, labels, torch.float64)
    for k, v in ref.items():
        tensors[k] = v.float().contiguous()
    print(f"train/loss {ref['train/loss'].item():.10f}; losses over the steps "
          f"{[round(ref[f'step3/loss{s}'].item(), 10) for s in range(1, STEPS + 1)]}")
    print(f"eval/logits {ref['eval/logits'].tolist()}")

    if args.check_float32:
        f32 = run(model, x, labels, torch.float32)
        groups = {}
        for k, v in ref.items():
            group = k.split("/")[0]
            d = (f32[k].double() - v).abs().max().item()
            scale = v.abs().max().item()
            worst = groups.get(group, (0.0, "", 0.0))
            if d > worst[0]:
                groups[group] = (d, k, scale)
        for group, (d, k, scale) in sorted(groups.items()):
            print(f"float32 torch vs float64: {group}: max |diff| {d:.3g} at {k} (max |value| there {scale:.3g})")

    metadata = {
        "config": "size=28;stem=32;channels=64,128,256;levels=3;classes=3;head_dim=32;reduction=8;"
                  "kernels=3,5,7;dropout=0.3",
        "train": "mode=train;dropout_p=0;loss=cross_entropy;reduction=mean;batch=4",
        "adamw": "lr=1e-3;beta1=0.9;beta2=0.999;eps=1e-8;weight_decay=0.05;steps=3;decay_all_params=1",
        "batchnorm": "momentum=0.1;eps=1e-5;running_var=unbiased;running_updates_in_step3=3",
        "init": "seed=0;bn_running_mean=N(0,0.1);bn_running_var=U(0.5,1.5);compute=float64;store=float32",
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_sorted(tensors, args.out, metadata=metadata)
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
