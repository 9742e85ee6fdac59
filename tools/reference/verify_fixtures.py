"""Re-derive parts of the committed fixtures a second, independent way (no nn.Module, no torch.optim).

    python3 tools/reference/verify_fixtures.py

- model_parity: a functional float64 forward written from the spec text, fed the stored w/ tensors,
  must reproduce train/logits, train/loss and eval/logits (the AdamW trajectory in step3/ is not
  re-derived here; it is plain torch.optim.AdamW, whose rule the optim check covers).
- ops: adaptive pooling against the spec's bin rule (floor(i*H/s) .. ceil((i+1)*H/s) - 1), eval-mode
  batch norm and weighted, label-smoothed cross-entropy against their closed forms.
- optim: AdamW, Adam (L2) and SGD momentum trajectories from the update rules in README.md.
Exits non-zero on the first mismatch.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))


def check(what, got, want, tol):
    err = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))
    status = "ok" if err <= tol else "FAIL"
    print(f"{status:4} {what}: max |diff| {err:.3g} (tol {tol:g})")
    if err > tol:
        sys.exit(1)


def functional_forward(w, x, training):
    """AHMSA-Net default config straight from the spec, parameters from dict w (float64 tensors)."""
    def bn(h, p):
        rm, rv = w[f"{p}.running_mean"].clone(), w[f"{p}.running_var"].clone()
        if training:
            mu = h.mean(dim=(0, 2, 3))
            var = h.var(dim=(0, 2, 3), unbiased=False)
            n = h.numel() // h.shape[1]
            new_rm = 0.9 * rm + 0.1 * mu
            new_rv = 0.9 * rv + 0.1 * var * n / (n - 1)
        else:
            mu, var, new_rm, new_rv = rm, rv, rm, rv
        y = (h - mu[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5)
        return y * w[f"{p}.weight"][:, None, None] + w[f"{p}.bias"][:, None, None], (new_rm, new_rv)

    running = {}
    h, running["stem.bn"] = bn(F.conv2d(x, w["stem.conv.weight"], padding=1), "stem.bn")
    h = torch.relu(h)
    pooled = []
    L = 3
    for i in range(L):
        p = f"levels.{i}"
        s = math.ceil(28 / 2 ** (i + 1))
        g = max(1, 2 ** (L - 2 - i)) if L - 2 - i >= 0 else 1
        a = torch.sigmoid(w[f"{p}.down.mix"])[None, :, None, None]
        q = a * F.adaptive_avg_pool2d(h, s) + (1 - a) * F.adaptive_max_pool2d(h, s)
        y, running[f"{p}.down.bn"] = bn(F.conv2d(q, w[f"{p}.down.conv.weight"], padding=1), f"{p}.down.bn")
        z = torch.relu(y) + w[f"{p}.attn.pos"][None]
        n, c = z.shape[:2]
        ws = s // g
        heads = c // 32
        zn = z.clone()
        for gy in range(g):
            for gx in range(g):
                blk = z[:, :, gy * ws:(gy + 1) * ws, gx * ws:(gx + 1) * ws]
                t = blk.reshape(n, c, ws * ws).transpose(1, 2)                # n, T, C
                u = F.layer_norm(t, (c,), w[f"{p}.attn.norm1.weight"], w[f"{p}.attn.norm1.bias"], 1e-5)
                qkv = u @ w[f"{p}.attn.qkv.weight"].t() + w[f"{p}.attn.qkv.bias"]
                outs = []
                for hh in range(heads):
                    qh = qkv[..., hh * 32:(hh + 1) * 32]
                    kh = qkv[..., c + hh * 32:c + (hh + 1) * 32]
                    vh = qkv[..., 2 * c + hh * 32:2 * c + (hh + 1) * 32]
                    outs.append(torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(32), dim=-1) @ vh)
                t = t + torch.cat(outs, -1) @ w[f"{p}.attn.proj.weight"].t() + w[f"{p}.attn.proj.bias"]
                u = F.layer_norm(t, (c,), w[f"{p}.attn.norm2.weight"], w[f"{p}.attn.norm2.bias"], 1e-5)
                f1 = u @ w[f"{p}.attn.ffn1.weight"].t() + w[f"{p}.attn.ffn1.bias"]
                f1 = 0.5 * f1 * (1 + torch.erf(f1 / math.sqrt(2)))
                t = t + f1 @ w[f"{p}.attn.ffn2.weight"].t() + w[f"{p}.attn.ffn2.bias"]
                zn[:, :, gy * ws:(gy + 1) * ws, gx * ws:(gx + 1) * ws] = t.transpose(1, 2).reshape(n, c, ws, ws)
        z = zn

        def mlp(v):
            r = torch.relu(v @ w[f"{p}.msa.fc1.weight"].t() + w[f"{p}.msa.fc1.bias"])
            return r @ w[f"{p}.msa.fc2.weight"].t() + w[f"{p}.msa.fc2.bias"]
        ca = torch.sigmoid(mlp(z.mean(dim=(2, 3))) + mlp(z.amax(dim=(2, 3))))
        zc = z * ca[:, :, None, None]
        d = torch.cat([zc.mean(1, keepdim=True), zc.amax(1, keepdim=True)], 1)
        logit = sum(F.conv2d(d, w[f"{p}.msa.spatial{k}.weight"], w[f"{p}.msa.spatial{k}.bias"], padding=k // 2)
                    for k in (3, 5, 7))
        h = z + zc * torch.sigmoid(logit)
        pooled.append(h.mean(dim=(2, 3)))
    feat = torch.cat(pooled, 1)
    return feat @ w["head.weight"].t() + w["head.bias"], running


def verify_model():
    d = load_file(os.path.join(FIX, "model_parity.safetensors"))
    w = {k[2:]: torch.from_numpy(v).double() for k, v in d.items() if k.startswith("w/")}
    x = torch.from_numpy(d["input"]).double()
    labels = torch.from_numpy(d["labels"])
    logits, _ = functional_forward(w, x, training=True)
    check("model train/logits (functional forward)", logits, d["train/logits"], 2e-6)
    check("model train/loss", F.cross_entropy(logits, labels).item(), d["train/loss"], 2e-6)
    eval_logits, _ = functional_forward(w, x, training=False)
    check("model eval/logits (functional forward)", eval_logits, d["eval/logits"], 2e-6)
    check("model step3/loss1 == train/loss", d["step3/loss1"], d["train/loss"], 0)


def verify_ops():
    d = load_file(os.path.join(FIX, "ops.safetensors"))
    for tag, (oh, ow) in (("a", (4, 4)), ("b", (14, 14)), ("c", (3, 4))):
        for kind, red in (("aavg", np.mean), ("amax", np.max)):
            x = d[f"{kind}_{tag}/in0"].astype(np.float64)
            H, W = x.shape[2:]
            out = np.zeros(x.shape[:2] + (oh, ow))
            for i in range(oh):
                for j in range(ow):
                    r0, r1 = (i * H) // oh, -((-(i + 1) * H) // oh)
                    c0, c1 = (j * W) // ow, -((-(j + 1) * W) // ow)
                    out[:, :, i, j] = red(x[:, :, r0:r1, c0:c1], axis=(2, 3))
            check(f"ops {kind}_{tag} vs bin rule", out, d[f"{kind}_{tag}/out"], 2e-7)
    x, wt, b, rm, rv = (d[f"bn_eval_a/in{i}"].astype(np.float64) for i in range(5))
    y = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) * wt[:, None, None] + b[:, None, None]
    check("ops bn_eval_a closed form", y, d["bn_eval_a/out"], 1e-6)
    for name, eps in (("ce_a", 0.0), ("ce_b", 0.1)):
        z = d[f"{name}/in0"].astype(np.float64)
        t = d[f"{name}/in1"]
        cw = d[f"{name}/in2"].astype(np.float64) if name == "ce_b" else np.ones(z.shape[1])
        logp = z - z.max(1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
        den = cw[t].sum()
        loss = (1 - eps) * -(cw[t] * logp[np.arange(len(t)), t]).sum() / den \
            + eps / z.shape[1] * -(logp * cw[None]).sum() / den
        check(f"ops {name} closed form", loss, d[f"{name}/out"], 1e-6)


def verify_optim():
    d = load_file(os.path.join(FIX, "optim.safetensors"))
    x, y, W0, b0 = (d[k].astype(np.float64) for k in ("x", "y", "W0", "b0"))

    def grad(W, b):
        r = x @ W.T + b - y
        return 2 / r.size * r.T @ x, 2 / r.size * r.sum(0)
    for name in ("adamw", "adam", "sgd"):
        params, state = [W0.copy(), b0.copy()], {}
        for t in range(1, 6):
            grads = grad(*params)
            for j, g in enumerate(grads):
                p = params[j]
                if name == "sgd":
                    g = g + 0.01 * p
                    state[j] = g if t == 1 else 0.9 * state[j] + g
                    p = p - 0.05 * state[j]
                else:
                    if name == "adamw":
                        p = p * (1 - 1e-2 * 0.1)
                    else:
                        g = g + 0.01 * p
                    m = 0.9 * state.get((j, "m"), 0) + 0.1 * g
                    v = 0.999 * state.get((j, "v"), 0) + 0.001 * g * g
                    state[(j, "m")], state[(j, "v")] = m, v
                    p = p - 1e-2 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
                params[j] = p
            check(f"optim {name} step {t} W", params[0], d[f"{name}/W_step{t}"], 2e-7)
            check(f"optim {name} step {t} b", params[1], d[f"{name}/b_step{t}"], 2e-7)


if __name__ == "__main__":
    verify_ops()
    verify_optim()
    verify_model()
    print("all fixture checks passed")
