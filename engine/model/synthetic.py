"""A tiny synthetic architecture family with a learnable accuracy signal (tests, benchmarks).

Networks: stem conv -> ``stages`` stages of 1-3 cells -> GAP -> linear.  A cell has 3
intermediate nodes, each summing 1-2 earlier nodes through a random op (conv 3x3, conv 1x1,
depthwise 3x3, avg pool, skip).  The accuracy label is a deterministic function of the op mix,
depth and FLOPs plus small noise, in roughly [80, 95] %, so predictors have something to learn.
"""

from __future__ import annotations

import math
import random

import numpy as np

from engine.graphs.cg import CG, CGBuilder

OPS = ("conv3", "conv1", "dw3", "pool", "skip")


def synthetic_cg(seed: int, hw: int = 32, width: int | None = None) -> tuple[CG, float]:
    """One synthetic CG and its accuracy label (%)."""
    r = random.Random(seed)
    c = width or r.choice([8, 16, 24])
    b = CGBuilder(f"syn{seed}", (hw, hw, 3))
    x = b.act(b.bn(b.conv(b.input(), c, 3)), "relu")
    counts = dict.fromkeys(OPS, 0)
    n_cells = 0
    for stage in range(r.choice([2, 3])):
        if stage:
            c *= 2
            x = b.act(b.bn(b.conv(x, c, 3, stride=2)), "relu")
        for _ in range(r.randint(1, 3)):
            n_cells += 1
            outs = [x]
            for _k in range(3):
                ins = []
                for src in r.sample(outs, min(len(outs), r.randint(1, 2))):
                    op = r.choice(OPS)
                    counts[op] += 1
                    if op == "conv3":
                        y = b.bn(b.conv(b.act(src, "relu"), c, 3))
                    elif op == "conv1":
                        y = b.bn(b.conv(b.act(src, "relu"), c, 1))
                    elif op == "dw3":
                        y = b.bn(b.conv(b.act(src, "relu"), c, 3, groups=c))
                    elif op == "pool":
                        y = b.pool(src, "avgpool", 3, 1)
                    else:
                        y = src
                    ins.append(y)
                outs.append(b.sum(ins))
            x = b.sum(outs[1:])
    cg = b.output(b.linear(b.mean(x), 10))
    acc = (84.0 + 1.2 * counts["conv3"] ** 0.5 + 0.6 * counts["conv1"] ** 0.5 + 0.4 * counts["dw3"] ** 0.5
           - 0.5 * counts["pool"] ** 0.5 + 0.8 * math.log10(cg.flops / 1e6 + 1) + 0.3 * n_cells
           + r.gauss(0, 0.15))
    return cg, float(min(max(acc, 0.0), 100.0))


def synthetic_dataset(n: int, seed: int = 0, hw: int = 32) -> tuple[list[CG], np.ndarray]:
    """``n`` synthetic CGs and labels (deterministic in ``seed``)."""
    pairs = [synthetic_cg(seed * 100_003 + i, hw) for i in range(n)]
    return [p[0] for p in pairs], np.array([p[1] for p in pairs])
