"""AHMSA-Net in PyTorch: the reference the C++ implementation is checked against.

This follows /work/shared/spec/AHMSA-NET.md literally. Parameter names and shapes are the spec's, so
`model.state_dict()` can be written to / read from the same safetensors files as the C++ side.

Run directly to print the parameter count and a short forward/backward smoke check:

    python3 tools/reference/ahmsa_torch.py [--size 28] [--classes 3]
"""
import argparse
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def level_sizes(size, levels):
    """s_l = ceil(S / 2^l) for l = 1..L."""
    return [int(math.ceil(size / (2 ** l))) for l in range(1, levels + 1)]


def window_grids(levels):
    """g_l = max(1, 2^(L-2-(l-1))) for l = 1..L: the finest level is cut into the most windows."""
    return [max(1, 2 ** (levels - 2 - (l - 1))) if levels - 2 - (l - 1) >= 0 else 1
            for l in range(1, levels + 1)]


class ConvBnRelu(nn.Module):
    """Conv2d(3x3, pad 1, no bias) -> BatchNorm2d -> ReLU; names `conv`, `bn`."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class AdaptiveDown(nn.Module):
    """Learned blend of adaptive average and max pooling to size s, then conv-BN-ReLU.

    a = sigmoid(mix) per input channel (mix starts at 0, so a = 1/2: an even blend);
    p = a * avgpool_s(x) + (1 - a) * maxpool_s(x);  y = ReLU(BN(conv3x3(p))).
    """

    def __init__(self, c_in, c_out, out_size):
        super().__init__()
        self.out_size = out_size
        self.mix = nn.Parameter(torch.zeros(c_in))
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.1)

    def forward(self, x):
        a = torch.sigmoid(self.mix).view(1, -1, 1, 1)
        s = self.out_size
        p = a * F.adaptive_avg_pool2d(x, s) + (1.0 - a) * F.adaptive_max_pool2d(x, s)
        return F.relu(self.bn(self.conv(p)))


class WindowAttention(nn.Module):
    """Pre-norm transformer block on a g x g grid of non-overlapping windows of a C x s x s map.

    z = y + pos; z = z + proj(MHSA_window(norm1(z))); z = z + ffn2(GELU(ffn1(norm2(z)))).
    norm1/norm2 are LayerNorms over the channel vector of each position ("ChannelNorm").
    """

    def __init__(self, channels, size, grid, head_dim=32):
        super().__init__()
        if channels % head_dim != 0:
            raise ValueError(f"WindowAttention: channels {channels} not divisible by head dim {head_dim}")
        if size % grid != 0:
            raise ValueError(f"WindowAttention: map size {size} not divisible by window grid {grid}")
        self.channels, self.size, self.grid = channels, size, grid
        self.head_dim = head_dim
        self.heads = channels // head_dim
        self.pos = nn.Parameter(torch.empty(channels, size, size))
        nn.init.trunc_normal_(self.pos, std=0.02, a=-0.04, b=0.04)
        self.norm1 = nn.LayerNorm(channels, eps=1e-5)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels, eps=1e-5)
        self.ffn1 = nn.Linear(channels, 2 * channels)
        self.ffn2 = nn.Linear(2 * channels, channels)

    def to_windows(self, z):
        """[N, C, s, s] -> [N*g*g, w*w, C]: windows row-major over the grid, tokens row-major inside."""
        n, c, s, _ = z.shape
        g = self.grid
        w = s // g
        z = z.view(n, c, g, w, g, w).permute(0, 2, 4, 3, 5, 1)  # n, gy, gx, wy, wx, c
        return z.reshape(n * g * g, w * w, c)

    def from_windows(self, t, n):
        """Inverse of to_windows: [N*g*g, w*w, C] -> [N, C, s, s]."""
        g, s, c = self.grid, self.size, self.channels
        w = s // g
        t = t.view(n, g, g, w, w, c).permute(0, 5, 1, 3, 2, 4)  # n, c, gy, wy, gx, wx
        return t.reshape(n, c, s, s)

    def forward(self, y):
        n = y.shape[0]
        z = y + self.pos.unsqueeze(0)
        tokens = self.to_windows(z)                        # B, T, C with B = N*g*g, T = w*w
        b, t, c = tokens.shape
        qkv = self.qkv(self.norm1(tokens))                 # B, T, 3C: columns [q | k | v]
        qkv = qkv.view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3, B, h, T, d
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # B, h, T, T
        o = torch.softmax(scores, dim=-1) @ v                          # B, h, T, d
        o = o.transpose(1, 2).reshape(b, t, c)                         # heads concatenated in order
        tokens = tokens + self.proj(o)
        tokens = tokens + self.ffn2(F.gelu(self.ffn1(self.norm2(tokens)), approximate="none"))
        return self.from_windows(tokens, n)


class MultiScaleAttention(nn.Module):
    """Channel attention (CBAM-style, shared MLP on GAP and GMP) then multi-kernel spatial attention.

    ca = sigmoid(MLP(GAP(z)) + MLP(GMP(z))); zc = z * ca;
    d = [mean_c(zc), max_c(zc)]; m = sigmoid(sum_k conv_k(d)), k in kernels; out = z + zc * m.
    """

    def __init__(self, channels, reduction=8, kernels=(3, 5, 7)):
        super().__init__()
        if channels % reduction != 0:
            raise ValueError(f"MultiScaleAttention: channels {channels} not divisible by r={reduction}")
        self.kernels = tuple(kernels)
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)
        for k in self.kernels:
            setattr(self, f"spatial{k}", nn.Conv2d(2, 1, k, padding=k // 2, bias=True))

    def mlp(self, v):
        return self.fc2(F.relu(self.fc1(v)))

    def forward(self, z):
        gap = z.mean(dim=(2, 3))
        gmp = z.amax(dim=(2, 3))
        ca = torch.sigmoid(self.mlp(gap) + self.mlp(gmp))
        zc = z * ca[:, :, None, None]
        d = torch.cat([zc.mean(dim=1, keepdim=True), zc.amax(dim=1, keepdim=True)], dim=1)
        logit = sum(getattr(self, f"spatial{k}")(d) for k in self.kernels)
        m = torch.sigmoid(logit)
        return z + zc * m


class Level(nn.Module):
    def __init__(self, c_in, c_out, size, grid, head_dim=32, reduction=8, kernels=(3, 5, 7)):
        super().__init__()
        self.down = AdaptiveDown(c_in, c_out, size)
        self.attn = WindowAttention(c_out, size, grid, head_dim)
        self.msa = MultiScaleAttention(c_out, reduction, kernels)

    def forward(self, x):
        return self.msa(self.attn(self.down(x)))


class AHMSANet(nn.Module):
    def __init__(self, size=28, stem=32, channels=(64, 128, 256), levels=None, classes=3,
                 dropout=0.3, head_dim=32, reduction=8, kernels=(3, 5, 7)):
        super().__init__()
        channels = tuple(channels)
        if levels is None:
            levels = len(channels)
        if len(channels) != levels:
            raise ValueError(f"AHMSANet: {levels} levels but {len(channels)} channel widths {channels}")
        self.size, self.levels_n, self.classes = size, levels, classes
        self.sizes = level_sizes(size, levels)
        self.grids = window_grids(levels)
        for l, (s, g) in enumerate(zip(self.sizes, self.grids)):
            if s % g != 0:
                raise ValueError(f"AHMSANet: level {l} size {s} (S={size}) not divisible by window grid {g}")
        self.stem = ConvBnRelu(3, stem)
        c_ins = (stem,) + channels[:-1]
        self.levels = nn.ModuleList(
            Level(ci, co, s, g, head_dim, reduction, kernels)
            for ci, co, s, g in zip(c_ins, channels, self.sizes, self.grids))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sum(channels), classes)

    def features(self, x):
        """Per-level global average pools, concatenated: [N, sum(channels)]."""
        h = self.stem(x)
        pooled = []
        for level in self.levels:
            h = level(h)
            pooled.append(h.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != self.size or x.shape[3] != self.size:
            raise ValueError(f"AHMSANet: expected input [N,3,{self.size},{self.size}], got {list(x.shape)}")
        return self.head(self.dropout(self.features(x)))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def spec_keys(size=28, stem=32, channels=(64, 128, 256), classes=3, reduction=8, kernels=(3, 5, 7)):
    """The spec's parameter/buffer table, written out independently of the module tree:
    {name: shape} for every parameter and BN running statistic (num_batches_tracked excluded)."""
    keys = {"stem.conv.weight": [stem, 3, 3, 3]}
    for b in ("weight", "bias", "running_mean", "running_var"):
        keys[f"stem.bn.{b}"] = [stem]
    sizes = level_sizes(size, len(channels))
    c_ins = (stem,) + tuple(channels[:-1])
    for i, (ci, c, s) in enumerate(zip(c_ins, channels, sizes)):
        p = f"levels.{i}"
        keys[f"{p}.down.mix"] = [ci]
        keys[f"{p}.down.conv.weight"] = [c, ci, 3, 3]
        for b in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{p}.down.bn.{b}"] = [c]
        keys[f"{p}.attn.pos"] = [c, s, s]
        for n in ("norm1", "norm2"):
            keys[f"{p}.attn.{n}.weight"] = [c]
            keys[f"{p}.attn.{n}.bias"] = [c]
        keys[f"{p}.attn.qkv.weight"] = [3 * c, c]
        keys[f"{p}.attn.qkv.bias"] = [3 * c]
        keys[f"{p}.attn.proj.weight"] = [c, c]
        keys[f"{p}.attn.proj.bias"] = [c]
        keys[f"{p}.attn.ffn1.weight"] = [2 * c, c]
        keys[f"{p}.attn.ffn1.bias"] = [2 * c]
        keys[f"{p}.attn.ffn2.weight"] = [c, 2 * c]
        keys[f"{p}.attn.ffn2.bias"] = [c]
        keys[f"{p}.msa.fc1.weight"] = [c // reduction, c]
        keys[f"{p}.msa.fc1.bias"] = [c // reduction]
        keys[f"{p}.msa.fc2.weight"] = [c, c // reduction]
        keys[f"{p}.msa.fc2.bias"] = [c]
        for k in kernels:
            keys[f"{p}.msa.spatial{k}.weight"] = [1, 2, k, k]
            keys[f"{p}.msa.spatial{k}.bias"] = [1]
    keys["head.weight"] = [classes, sum(channels)]
    keys["head.bias"] = [classes]
    return keys


def check_against_spec(model, **cfg):
    """Raise if the module's state_dict differs from the spec table in any name or shape."""
    want = spec_keys(**cfg)
    have = {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if have != want:
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        raise AssertionError(f"state_dict differs from spec: missing {missing} extra {extra} shape {wrong}")


def naive_window_attention(block, y):
    """Loop-per-window, per-head version of WindowAttention.forward, used only to cross-check it."""
    n, c, s, _ = y.shape
    g, w, dh = block.grid, s // block.grid, block.head_dim
    z = y + block.pos.unsqueeze(0)
    out = z.clone()
    for b in range(n):
        for gy in range(g):
            for gx in range(g):
                patch = z[b, :, gy * w:(gy + 1) * w, gx * w:(gx + 1) * w]     # C, w, w
                tok = patch.reshape(c, w * w).t()                              # T, C (row-major)
                qkv = block.qkv(F.layer_norm(tok, (c,), block.norm1.weight, block.norm1.bias, 1e-5))
                heads = []
                for h in range(block.heads):
                    q = qkv[:, h * dh:(h + 1) * dh]
                    k = qkv[:, c + h * dh:c + (h + 1) * dh]
                    v = qkv[:, 2 * c + h * dh:2 * c + (h + 1) * dh]
                    heads.append(torch.softmax(q @ k.t() / math.sqrt(dh), dim=1) @ v)
                tok = tok + block.proj(torch.cat(heads, dim=1))
                hid = F.gelu(block.ffn1(F.layer_norm(tok, (c,), block.norm2.weight, block.norm2.bias, 1e-5)))
                tok = tok + block.ffn2(hid)
                out[b, :, gy * w:(gy + 1) * w, gx * w:(gx + 1) * w] = tok.t().reshape(c, w, w)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--list", action="store_true", help="print every state_dict key and shape")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = AHMSANet(size=args.size, classes=args.classes)
    print(f"level sizes {model.sizes} window grids {model.grids}")
    print(f"parameters (BN running stats excluded): {parameter_count(model)}")
    check_against_spec(model, size=args.size, classes=args.classes)
    print("state_dict names and shapes match the spec table")
    with torch.no_grad():
        for i, level in enumerate(model.levels):
            y = torch.randn(2, level.attn.channels, level.attn.size, level.attn.size)
            err = (level.attn(y) - naive_window_attention(level.attn, y)).abs().max().item()
            print(f"level {i}: window attention vs per-window loop max |diff| = {err:.3g}")
            assert err < 1e-4
    if args.list:
        for k, v in model.state_dict().items():
            print(f"  {k} {list(v.shape)}")
    x = torch.rand(2, 3, args.size, args.size)
    logits = model(x)
    logits.sum().backward()
    print(f"logits shape {list(logits.shape)}")


if __name__ == "__main__":
    main()
