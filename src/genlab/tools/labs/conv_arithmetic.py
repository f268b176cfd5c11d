"""Lab ``conv-arithmetic``: the output-size formulas of the notes (Dumoulin & Visin 2016, "A guide
to convolution arithmetic for deep learning", arXiv:1603.07285; PyTorch's Conv/ConvTranspose/
Pool docs) against what torch computes, over a grid of input size n, kernel k, stride s,
padding p and dilation d:

    convolution / pooling   floor((n + 2p - d(k-1) - 1) / s) + 1
    pooling, ceil_mode      ceil(...) + 1, less one if the last window starts in the right padding
    transposed convolution  (n - 1)s - 2p + d(k-1) + output_padding + 1

and the sizes genlab's conv networks reach (``genlab.nn.conv.size_plan``: a base of 4 to 8
doubled by k=4, s=2, p=1 layers), each checked by building the decoder.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from genlab.core.errors import ConfigError
from genlab.models.sampling import pyplot
from genlab.nn.conv import ConvDecoder, conv_out, conv_t_out, size_plan
from genlab.nn.layers import LayerFactory
from genlab.tools.labs.base import LabContext, LabOutput, at_most, close, register_lab


def conv_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_size(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    if not ceil:
        return conv_size(n, k, s, p, d)
    out = math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1
    if (out - 1) * s >= n + p:  # the last window would start in the right padding
        out -= 1
    return out


def conv_t_size(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def torch_size(fn, *args, **kwargs) -> int:
    """The length torch gives, or 0 where it refuses (an output shorter than 1)."""
    try:
        return fn(*args, **kwargs).shape[-1]
    except RuntimeError:
        return 0


def compare_grid(sizes: range) -> dict[str, list[tuple]]:
    """Disagreements (case, formula, torch) per operation; a formula below 1 must be a torch
    refusal (0)."""
    bad: dict[str, list[tuple]] = {"conv": [], "conv_t": [], "maxpool": [], "avgpool": []}
    counts = dict.fromkeys(bad, 0)
    one = torch.ones(1, 1, 1)
    for n, k, s, p, d in itertools.product(sizes, range(1, 6), range(1, 4), range(3), (1, 2)):
        x = torch.zeros(1, 1, n)
        w = one.expand(1, 1, k).contiguous()
        expect = max(conv_size(n, k, s, p, d), 0)
        got = torch_size(F.conv1d, x, w, stride=s, padding=p, dilation=d)
        counts["conv"] += 1
        if got != expect:
            bad["conv"].append(((n, k, s, p, d), expect, got))
        for op in range(max(s, d)):  # torch: output_padding < max(stride, dilation)
            if p > d * (k - 1):  # more padding than the kernel reaches: not a valid layer
                continue
            expect = max(conv_t_size(n, k, s, p, d, op), 0)
            kw = {"stride": s, "padding": p, "output_padding": op, "dilation": d}
            got = torch_size(F.conv_transpose1d, x, w, **kw)
            counts["conv_t"] += 1
            if got != expect:
                bad["conv_t"].append(((n, k, s, p, d, op), expect, got))
        if p <= k // 2:  # torch: pooling pads at most half the kernel
            for ceil in (False, True):
                expect = max(pool_size(n, k, s, p, d, ceil), 0)
                got = torch_size(F.max_pool1d, x, k, s, p, d, ceil_mode=ceil)
                counts["maxpool"] += 1
                if got != expect:
                    bad["maxpool"].append(((n, k, s, p, d, ceil), expect, got))
                if d == 1:
                    expect = max(pool_size(n, k, s, p, 1, ceil), 0)
                    got = torch_size(F.avg_pool1d, x, k, s, p, ceil_mode=ceil)
                    counts["avgpool"] += 1
                    if got != expect:
                        bad["avgpool"].append(((n, k, s, p, ceil), expect, got))
    return {"bad": bad, "counts": counts}


def reachable_sizes(top: int) -> dict[int, tuple[int, int] | None]:
    out = {}
    for size in range(4, top + 1):
        try:
            out[size] = size_plan(size)
        except ConfigError:
            out[size] = None
    return out


@register_lab(
    "conv-arithmetic",
    claim="conv, transposed-conv and pooling output sizes follow the notes' formulas exactly",
    defaults={"max_n": 24, "max_size": 128, "decoders": 6},
    quick={"max_n": 12, "max_size": 64, "decoders": 2},
)
def run(ctx: LabContext) -> LabOutput:
    grid = compare_grid(range(1, ctx["max_n"] + 1))
    bad, counts = grid["bad"], grid["counts"]
    checks = [at_most(f"{op} disagreements of {counts[op]}", len(bad[op]), 0) for op in bad]
    # genlab's own size functions (nn/conv.py) against the general formula.
    lib = [
        (n, k, s, p)
        for n, k, s, p in itertools.product(range(1, 33), range(1, 6), range(1, 4), range(3))
        if conv_out(n, k, s, p) != conv_size(n, k, s, p, 1)
        or conv_t_out(n, k, s, p) != conv_t_size(n, k, s, p, 1, 0)
    ]
    checks.append(at_most("genlab.nn.conv size functions disagreements", len(lib), 0))
    plans = reachable_sizes(ctx["max_size"])
    reach = [s for s, plan in plans.items() if plan]
    built = reach[:: max(1, len(reach) // ctx["decoders"])][: ctx["decoders"]]
    wrong = 0
    for size in built:
        dec = ConvDecoder(8, 1, size, 4, LayerFactory()).eval()
        with torch.no_grad():
            wrong += dec(torch.zeros(1, 8)).shape[-1] != size
    checks.append(close(f"decoders built to the planned size ({len(built)})", wrong, 0, 0))

    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 4))
    ns = range(1, ctx["max_n"] + 1)
    for k, s, p in ((3, 1, 1), (4, 2, 1), (3, 2, 0), (5, 3, 2)):
        formula = [max(conv_size(n, k, s, p, 1), 0) for n in ns]
        w = torch.ones(1, 1, k)
        measured = [torch_size(F.conv1d, torch.zeros(1, 1, n), w, stride=s, padding=p) for n in ns]
        (line,) = ax1.plot(ns, formula, label=f"k={k} s={s} p={p}")
        ax1.plot(ns, measured, "o", color=line.get_color(), ms=3)
    ax1.set(xlabel="input size n", ylabel="output size", title="formula (lines) vs torch (dots)")
    ax1.legend(fontsize=8)
    for base in range(4, 9):
        sides = [s for s in reach if plans[s][1] == base]
        ax2.plot(sides, [plans[s][0] for s in sides], "o", label=f"base {base}")
    for side in (8, 16, 28, 32, 64, 128):
        if side in reach:
            at = (side, plans[side][0])
            ax2.annotate(str(side), at, textcoords="offset points", xytext=(0, 6), ha="center")
    title = f"the {len(reach)} sides genlab's conv nets reach up to {ctx['max_size']}"
    ax2.set(xlabel="image side", ylabel="stride-2 doublings", title=title)
    ax2.legend(fontsize=8)
    numbers = {
        "cases": counts,
        "disagreements": {op: [list(map(str, b)) for b in bad[op][:10]] for op in bad},
        "reachable_sizes": reach,
        "decoders_built": built,
    }
    return LabOutput(checks, fig, numbers)
