"""The GENNAPE authors' op sampler for one block (their ``sample_block_config``), shared by the
Inception and Two-Path families (each with its own op lists)."""

from __future__ import annotations

import random
from collections.abc import Sequence


def block_ops(rng: random.Random, n_ops: int, conv_ops: Sequence[str], all_ops: Sequence[str],
              supp_ops: Sequence[str]) -> list[str]:
    """``n_ops`` ops in random order: the first draw is a conv op, the rest are drawn from
    ``all_ops`` with at most one supplementary op (a second one is redrawn among the convs)."""
    ops = [rng.choice(conv_ops)]
    has_supp = False
    for _ in range(n_ops - 1):
        op = rng.choice(all_ops)
        if op in supp_ops:
            if has_supp:
                op = rng.choice(conv_ops)
            has_supp = True
        ops.append(op)
    rng.shuffle(ops)
    return ops
