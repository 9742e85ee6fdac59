"""Write tests/fixtures/ops.safetensors: forward values and gradients of single ops, from PyTorch.

For a case NAME the file holds
    NAME/in0, NAME/in1, ...   the op's tensor inputs, in the order the op takes them
    NAME/out                  the forward output
    NAME/gout                 a random upstream gradient, shape of out
    NAME/grad0, NAME/grad1 .. d sum(out * gout) / d in_i, only for float (differentiable) inputs
and the metadata entry NAME -> "op=<op>;key=value;..." (see README.md for the keys of each op).

Inputs are drawn in float32 (so the stored inputs are exactly what was used), every result is
computed in float64 and rounded once to float32 when stored. Integer targets are int64.

    python3 tools/reference/make_op_fixtures.py [--out tests/fixtures/ops.safetensors]
"""
import argparse
import os

import torch
import torch.nn.functional as F
from st_io import save_sorted

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures", "ops.safetensors"))


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def positive(*shape):
    """uniform(0.5, 2): safe for log, sqrt and denominators."""
    return torch.rand(*shape, dtype=torch.float32) * 1.5 + 0.5


def away_from_zero(*shape, margin=1e-2):
    """Normal values with none in (-margin, margin), so relu's kink is never hit."""
    x = randn(*shape)
    sign = torch.where(x >= 0, 1.0, -1.0)
    return torch.where(x.abs() < margin, sign * (x.abs() + 2 * margin), x)


class Fixture:
    def __init__(self):
        self.tensors = {}
        self.metadata = {}

    def case(self, name, meta, fn, inputs, differentiable=None, extra=None):
        """Evaluate fn on float64 copies of `inputs`; store inputs, output, gout and gradients.

        differentiable: list of bools per input (default: every float input). `extra`, if given, is
        called with the float64 inputs after the forward and returns more {suffix: tensor} to store.
        """
        if name in self.metadata:
            raise ValueError(f"duplicate fixture case {name}")
        if differentiable is None:
            differentiable = [t.is_floating_point() for t in inputs]
        x64 = []
        for t, d in zip(inputs, differentiable):
            u = t.double() if t.is_floating_point() else t.clone()
            x64.append(u.requires_grad_(d))
        out = fn(*x64)
        gout = torch.randn(tuple(out.shape), dtype=torch.float32)
        wrt = [u for u, d in zip(x64, differentiable) if d]
        grads = torch.autograd.grad((out * gout.double()).sum(), wrt) if wrt else []
        for i, t in enumerate(inputs):
            self.tensors[f"{name}/in{i}"] = t.contiguous()
        self.tensors[f"{name}/out"] = out.detach().float().contiguous()
        self.tensors[f"{name}/gout"] = gout
        g = iter(grads)
        for i, d in enumerate(differentiable):
            if d:
                self.tensors[f"{name}/grad{i}"] = next(g).float().contiguous()
        if extra is not None:
            for suffix, t in extra(x64).items():
                self.tensors[f"{name}/{suffix}"] = t.detach().float().contiguous()
        self.metadata[name] = meta


def channel_norm(x, w, b, eps):
    """LayerNorm over dim 1 of an NCHW map, independently at each (n, h, w)."""
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w, b, eps)
    return y.permute(0, 3, 1, 2)


def cross_entropy_by_hand(logits, target, weight, eps):
    """PyTorch's mean-reduced cross-entropy with class weights and label smoothing, written out:
    loss = (1-eps) * sum_n w[t_n] * (-logp[n,t_n]) / sum_n w[t_n]
         + (eps/K) * sum_n sum_c w[c] * (-logp[n,c]) / sum_n w[t_n]
    (without weights w = 1, so both denominators are N). Used only to check the formula in README."""
    logp = torch.log_softmax(logits, dim=1)
    k = logits.shape[1]
    w = weight if weight is not None else torch.ones(k, dtype=logits.dtype)
    wt = w[target]
    nll = -(wt * logp.gather(1, target[:, None])[:, 0]).sum() / wt.sum()
    smooth = -(logp * w[None, :]).sum() / wt.sum()
    return (1 - eps) * nll + eps / k * smooth


def build():
    torch.manual_seed(0)
    fx = Fixture()

    # Convolutions (cross-correlation, PyTorch layout: x [N,C,H,W], w [O,C,kh,kw], b [O]).
    fx.case("conv_a", "op=conv2d;stride=1;pad=1", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1),
            [randn(2, 3, 9, 9), randn(4, 3, 3, 3), randn(4)])
    fx.case("conv_b", "op=conv2d;stride=2;pad=2", lambda x, w: F.conv2d(x, w, None, stride=2, padding=2),
            [randn(2, 5, 8, 7), randn(6, 5, 5, 5)])
    fx.case("conv_c", "op=conv2d;stride=1;pad=3", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=3),
            [randn(1, 2, 6, 6), randn(1, 2, 7, 7), randn(1)])
    fx.case("conv_d", "op=conv2d;stride=1;pad=0", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=0),
            [randn(3, 8, 4, 4), randn(16, 8, 1, 1), randn(16)])

    fx.case("matmul_a", "op=matmul", torch.matmul, [randn(3, 4, 5), randn(3, 5, 6)])
    fx.case("matmul_b", "op=matmul", torch.matmul, [randn(7, 9), randn(9, 5)])
    fx.case("linear_a", "op=linear", F.linear, [randn(4, 6), randn(5, 6), randn(5)])
    fx.case("linear_b", "op=linear", F.linear, [randn(2, 3, 6), randn(5, 6), randn(5)])

    # Broadcasting binary ops (numpy rules: shapes aligned at the right).
    fx.case("add_a", "op=add", torch.add, [randn(2, 3, 4), randn(3, 1)])
    fx.case("sub_a", "op=sub", torch.sub, [randn(2, 1, 4), randn(1, 3, 1)])
    fx.case("mul_a", "op=mul", torch.mul, [randn(2, 3, 4), randn(4)])
    fx.case("div_a", "op=div", torch.div, [randn(2, 3, 4), positive(2, 1, 1)])

    # Unary elementwise.
    fx.case("relu_a", "op=relu", F.relu, [away_from_zero(3, 5, 7)])
    fx.case("gelu_a", "op=gelu;approximate=none", lambda x: F.gelu(x, approximate="none"), [randn(3, 5, 7)])
    fx.case("sigmoid_a", "op=sigmoid", torch.sigmoid, [randn(3, 5, 7)])
    fx.case("exp_a", "op=exp", torch.exp, [randn(3, 5, 7)])
    fx.case("log_a", "op=log", torch.log, [positive(3, 5, 7)])
    fx.case("sqrt_a", "op=sqrt", torch.sqrt, [positive(3, 5, 7)])

    # Reductions.
    fx.case("sum_a", "op=sum;dims=1;keepdim=0", lambda x: x.sum(dim=1), [randn(3, 4, 5)])
    fx.case("sum_b", "op=sum;dims=0,2;keepdim=1", lambda x: x.sum(dim=(0, 2), keepdim=True), [randn(3, 4, 5)])
    fx.case("mean_a", "op=mean;dims=2;keepdim=0", lambda x: x.mean(dim=2), [randn(3, 4, 5)])
    fx.case("mean_b", "op=mean;dims=1,2;keepdim=1", lambda x: x.mean(dim=(1, 2), keepdim=True), [randn(3, 4, 5)])
    fx.case("max_a", "op=max;dim=1;keepdim=0", lambda x: x.max(dim=1).values, [randn(3, 4, 5)])
    fx.case("max_b", "op=max;dim=2;keepdim=1", lambda x: x.max(dim=2, keepdim=True).values, [randn(3, 4, 5)])

    fx.case("softmax_a", "op=softmax;dim=2", lambda x: torch.softmax(x, dim=2), [randn(3, 4, 5)])
    fx.case("softmax_b", "op=softmax;dim=1", lambda x: torch.softmax(x, dim=1), [randn(3, 4, 5)])
    fx.case("logsoftmax_a", "op=log_softmax;dim=1", lambda x: torch.log_softmax(x, dim=1), [randn(4, 7)])

    # Normalisations. Affine weights drawn around 1 so the test is not dominated by tiny scales.
    fx.case("channelnorm_a", "op=channel_norm;eps=1e-5", lambda x, w, b: channel_norm(x, w, b, 1e-5),
            [randn(2, 6, 5, 5), 1 + 0.3 * randn(6), randn(6)])
    fx.case("layernorm_a", "op=layer_norm;eps=1e-5", lambda x, w, b: F.layer_norm(x, (16,), w, b, 1e-5),
            [randn(3, 7, 16), 1 + 0.3 * randn(16), randn(16)])

    bn_in = [randn(4, 3, 5, 5) * 1.5 + 0.7, 1 + 0.3 * randn(3), randn(3), randn(3), positive(3)]
    bn_diff = [True, True, True, False, False]
    bn_state = {}

    def bn_train(x, w, b, rm, rv):
        rm2, rv2 = rm.detach().clone(), rv.detach().clone()
        y = F.batch_norm(x, rm2, rv2, w, b, training=True, momentum=0.1, eps=1e-5)
        bn_state["mean"], bn_state["var"] = rm2, rv2
        return y

    fx.case("bn_train_a", "op=batch_norm2d;momentum=0.1;eps=1e-5;training=1", bn_train, bn_in, bn_diff,
            extra=lambda _: {"running_mean_after": bn_state["mean"], "running_var_after": bn_state["var"]})
    # Check the running-statistics rule the C++ side must implement: unbiased variance, momentum 0.1.
    x64 = bn_in[0].double()
    n = x64.numel() // x64.shape[1]
    mu = x64.mean(dim=(0, 2, 3))
    var_unbiased = x64.var(dim=(0, 2, 3), unbiased=True)
    assert torch.allclose(bn_state["mean"], 0.9 * bn_in[3].double() + 0.1 * mu)
    assert torch.allclose(bn_state["var"], 0.9 * bn_in[4].double() + 0.1 * var_unbiased), n
    fx.case("bn_eval_a", "op=batch_norm2d;momentum=0.1;eps=1e-5;training=0",
            lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False, momentum=0.1, eps=1e-5),
            [t.clone() for t in bn_in], bn_diff)

    # Pooling.
    fx.case("maxpool_a", "op=max_pool2d;kernel=2;stride=2;pad=0",
            lambda x: F.max_pool2d(x, 2, stride=2, padding=0), [randn(2, 3, 8, 8)])
    fx.case("maxpool_b", "op=max_pool2d;kernel=3;stride=2;pad=1",
            lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [randn(1, 2, 7, 7)])
    adaptive = [("a", (2, 3, 7, 7), (4, 4)), ("b", (1, 2, 28, 28), (14, 14)), ("c", (2, 2, 5, 9), (3, 4))]
    for tag, shape, (oh, ow) in adaptive:
        fx.case(f"aavg_{tag}", f"op=adaptive_avg_pool2d;out_h={oh};out_w={ow}",
                lambda x, oh=oh, ow=ow: F.adaptive_avg_pool2d(x, (oh, ow)), [randn(*shape)])
    for tag, shape, (oh, ow) in adaptive:
        fx.case(f"amax_{tag}", f"op=adaptive_max_pool2d;out_h={oh};out_w={ow}",
                lambda x, oh=oh, ow=ow: F.adaptive_max_pool2d(x, (oh, ow)), [randn(*shape)])

    fx.case("cat_a", "op=cat;dim=1", lambda a, b: torch.cat([a, b], dim=1), [randn(2, 3, 4), randn(2, 5, 4)])

    # Cross-entropy, mean reduction (a 0-d output).
    logits, target = randn(6, 4), torch.randint(0, 4, (6,), dtype=torch.int64)
    fx.case("ce_a", "op=cross_entropy;weighted=0;label_smoothing=0;reduction=mean",
            lambda z, t: F.cross_entropy(z, t), [logits, target])
    logits, target, weight = randn(6, 4), torch.randint(0, 4, (6,), dtype=torch.int64), positive(4)
    fx.case("ce_b", "op=cross_entropy;weighted=1;label_smoothing=0.1;reduction=mean",
            lambda z, t, w: F.cross_entropy(z, t, weight=w, label_smoothing=0.1),
            [logits, target, weight], [True, False, False])
    for name, w, eps in (("ce_a", None, 0.0), ("ce_b", "ce_b/in2", 0.1)):
        z = fx.tensors[f"{name}/in0"].double()
        t = fx.tensors[f"{name}/in1"]
        ww = fx.tensors[w].double() if w else None
        by_hand = cross_entropy_by_hand(z, t, ww, eps)
        assert abs(by_hand.item() - fx.tensors[f"{name}/out"].item()) < 1e-6, (name, by_hand)

    # Cross-entropy against probability targets (mixup's soft targets): the mean over rows of
    # -sum_k w_k q_k log p_k, label smoothing applied to q. Drawn after every other case, so adding
    # these left the earlier cases' tensors as they were.
    logits, probs = randn(5, 3), torch.softmax(randn(5, 3), dim=1)
    fx.case("ce_soft_a", "op=cross_entropy_soft;weighted=0;label_smoothing=0",
            lambda z, q: F.cross_entropy(z, q), [logits, probs], [True, False])
    logits, probs, weight = randn(4, 5), torch.softmax(randn(4, 5), dim=1), positive(5)
    fx.case("ce_soft_b", "op=cross_entropy_soft;weighted=1;label_smoothing=0.2",
            lambda z, q, w: F.cross_entropy(z, q, weight=w, label_smoothing=0.2),
            [logits, probs, weight], [True, False, False])
    return fx


def main():
    ap = argparse.ArgumentParser(description="write the op fixtures")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    fx = build()
    for k, v in fx.tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_sorted(fx.tensors, args.out, metadata=fx.metadata)
    print(f"wrote {args.out}: {len(fx.metadata)} cases, {len(fx.tensors)} tensors, "
          f"{os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
