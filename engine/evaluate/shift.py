"""Does a predictor's ranking survive a change of input size and class count?

The networks the product is judged on take 224 px images and have 1,000 classes; every labelled
family here is CIFAR-sized.  This check renders the *same* NB-201 cells three ways, as CGs for
32 px / 10 classes (CIFAR-10), 16 px / 120 classes (the ImageNet16-120 head) and 224 px / 1,000
classes (an ImageNet-sized rendering no benchmark trained), and reports for every ensemble
member

* its SRCC against the cells' CIFAR-10 labels in each rendering, and
* the rank agreement (SRCC) between its 32 px and its 224 px / 16 px predictions.

The cells are identical, so a ranking that is robust to the shift should barely move; FLOPs and
params move not at all (every conv scales alike).  It needs no labels of the shifted renderings
and no test family, so it can guide choices that the hand-designed check
(:mod:`engine.evaluate.zoo`) must not.  NB-201 is a training family of the shipped checkpoint, so
the SRCC columns are in-family numbers; the agreement columns are what this check is about.

``python -m engine.evaluate.shift [--n 2000] [--checkpoint DIR] [--output FILE.json]``
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.evaluate._io import check_parser, run_check, write_output

RENDERINGS = {"32px/10": {}, "16px/120": {"input_hw": 16, "num_classes": 120},
              "224px/1000": {"input_hw": 224, "num_classes": 1000}}


def evaluate(n: int = 2000, checkpoint: str | Path | None = None, seed: int = 1) -> dict:
    import numpy as np

    from engine.data import load_default
    from engine.families import get
    from engine.metrics.ranking import srcc
    from engine.model import default_checkpoint_dir
    from engine.model.config import MEMBERS
    from engine.model.predictor import GennapePredictor

    if n < 10:
        raise ValueError(f"--n must be at least 10, got {n}")
    ds = load_default("cifar10", with_cgs=False)
    frame = ds.frame
    idx = np.sort(np.random.default_rng(seed).choice(len(frame), min(n, len(frame)), replace=False))
    specs = frame["spec"].to_numpy()[idx]
    acc = frame["label"].to_numpy(dtype=float)[idx]
    fam = get("nb201")
    pred = GennapePredictor.load(Path(checkpoint) if checkpoint else default_checkpoint_dir())
    columns = ["score"] + list(MEMBERS)
    preds = {}
    for tag, kw in RENDERINGS.items():
        out = pred.predict([fam.to_cg(s, **kw) for s in specs])
        preds[tag] = {c: out[c].to_numpy(dtype=float) for c in columns}
    rows = []
    for c in columns:
        if not all(np.isfinite(preds[t][c]).all() for t in RENDERINGS):
            continue
        row = {"method": c}
        for tag in RENDERINGS:
            row[f"srcc {tag}"] = float(srcc(acc, preds[tag][c]))
        for tag in ("16px/120", "224px/1000"):
            row[f"agree 32 vs {tag}"] = float(srcc(preds["32px/10"][c], preds[tag][c]))
        rows.append(row)
    return {"n": int(idx.size), "seed": seed, "labels": ds.provenance.label(), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    args = check_parser("python -m engine.evaluate.shift", __doc__, 2000, "NB-201 cells (default 2000)").parse_args(argv)
    res = run_check(evaluate, args.n, args.checkpoint, args.seed)
    if res is None:
        return 2
    print(f"{res['n']} NB-201 cells rendered three ways; labels: {res['labels']}")
    keys = [k for k in res["rows"][0] if k != "method"]
    width = max(len(k) for k in keys) + 2
    print(f"{'method':<18}" + "".join(f"{k:>{width}}" for k in keys))
    for r in res["rows"]:
        print(f"{r['method']:<18}" + "".join(f"{r[k]:>{width}.3f}" for k in keys))
    return write_output(args.output, res)


if __name__ == "__main__":
    raise SystemExit(main())
