"""Does ``novelty`` tell the training domain from other families?

:mod:`engine.model.domain` gives every CG a ``novelty``: its embedding's distance to the nearest
training CG over the 99th percentile of the training CGs' own such distances (> 1 = outside the
training domain).  This check embeds

* **held out**: NB-201 cells the checkpoint did *not* train on (its NB-201 training sample is
  rebuilt from the model card), which should read as inside, and
* every other family the engine generates, unlabelled (OFA ProxylessNAS / MobileNetV3 / ResNet,
  HiAML, Inception, Two-Path), plus the hand-designed ImageNet networks of
  :mod:`engine.evaluate.zoo`, which the checkpoint never saw,

and reports per set the median novelty, the share with novelty > 1, and the AUROC of novelty
(and, for comparison, of FCM membership entropy) for telling that set from the held-out cells.
No label is read, nothing is fitted: it is a description of the shipped checkpoint.

``python -m engine.evaluate.domain [--n 200] [--checkpoint DIR] [--output FILE.json]``
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.evaluate._io import check_parser, run_check, write_output

OTHER_FAMILIES = ("ofa_pn", "ofa_mbv3", "ofa_resnet", "hiaml", "inception", "two_path")


def auroc(inside, outside) -> float:
    """P(an ``outside`` value > an ``inside`` value), ties counting half (Mann-Whitney)."""
    import numpy as np
    from scipy.stats import rankdata

    a, b = np.asarray(inside, dtype=float), np.asarray(outside, dtype=float)
    if a.size == 0 or b.size == 0:
        return float("nan")
    r = rankdata(np.concatenate([a, b]))
    return float((r[a.size:].sum() - b.size * (b.size + 1) / 2) / (a.size * b.size))


def nb201_labels(specs, dataset: str = "cifar10"):
    """The embedded labels (``cifar10``, ``cifar100``, ``imagenet``) of NB-201 ``specs``, in order."""
    import numpy as np

    from engine.data import load_default

    by_spec = load_default(dataset, with_cgs=False).frame.set_index("spec")["label"]
    return by_spec.loc[list(specs)].to_numpy(dtype=np.float64)


def heldout_nb201(pred, n: int, seed: int):
    """``n`` NB-201 specs outside the checkpoint's NB-201 training sample, and a note on how sure."""
    import numpy as np

    from engine.data import load_default
    from engine.train.data import training_dataset

    frame = load_default("cifar10", with_cgs=False).frame
    card = pred.model_card
    specs = frame["spec"].astype(str).to_numpy()
    exclude: set[str] = set()
    if "nb201" in card.get("source_datasets", []):
        max_per = card.get("max_per_family")
        if not max_per or max_per >= len(frame):
            raise ValueError("the checkpoint trained on every NB-201 cell: no held-out cells to compare with")
        train = training_dataset(["nb201"], None, int(max_per), pred.config.train.seed)
        exclude = set(train.frame["spec"].astype(str))
        note = f"NB-201 cells outside the checkpoint's {len(exclude)}-cell training sample"
    else:
        note = "NB-201 cells (NB-201 is not among the checkpoint's training datasets)"
    pool = np.flatnonzero(~np.isin(specs, list(exclude)))
    idx = np.sort(np.random.default_rng(seed).choice(pool, min(n, pool.size), replace=False))
    return frame["spec"].to_numpy()[idx], note


def evaluate(n: int = 200, checkpoint: str | Path | None = None, seed: int = 1) -> dict:
    import numpy as np

    from engine.evaluate import zoo
    from engine.families import get
    from engine.model import default_checkpoint_dir
    from engine.model.predictor import GennapePredictor
    from engine.studio import membership_entropy

    if n < 10:
        raise ValueError(f"--n must be at least 10, got {n}")
    ckpt = Path(checkpoint) if checkpoint else default_checkpoint_dir()
    pred = GennapePredictor.load(ckpt)
    if pred.domain is None:
        raise ValueError(f"{ckpt}: the checkpoint has no domain reference; run "
                         f"`python -m engine calibrate-domain --checkpoint {ckpt}`")

    def measure(cgs):
        h = pred.embed(cgs)
        return pred.novelty_from_embeddings(h), membership_entropy(pred.fcm_memberships(h))

    fam = get("nb201")
    specs, note = heldout_nb201(pred, 5 * n, seed)
    nov_in, ent_in = measure([fam.to_cg(s) for s in specs])
    sets = {f: [get(f).to_cg(s) for s in get(f).sample(n, seed=seed)] for f in OTHER_FAMILIES}
    sets["hand-designed"] = zoo.cgs()
    rows = [{"set": "NB-201 held out", "n": int(len(nov_in)), "median novelty": float(np.median(nov_in)),
             "share > 1": float(np.mean(nov_in > 1)), "AUROC novelty": float("nan"),
             "AUROC entropy": float("nan")}]
    for name, cgs in sets.items():
        nov, ent = measure(cgs)
        rows.append({"set": name, "n": len(cgs), "median novelty": float(np.median(nov)),
                     "share > 1": float(np.mean(nov > 1)), "AUROC novelty": auroc(nov_in, nov),
                     "AUROC entropy": auroc(ent_in, ent)})
    return {"checkpoint": str(ckpt), "inside": note, "seed": seed,
            "reference": pred.model_card.get("domain", {}), "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    args = check_parser("python -m engine.evaluate.domain", __doc__, 200,
                        "CGs per other family (default 200; 5x as many held-out NB-201 cells)").parse_args(argv)
    res = run_check(evaluate, args.n, args.checkpoint, args.seed)
    if res is None:
        return 2
    print(f"inside: {res['inside']}; novelty 1 = 99th percentile of the training CGs' distance")
    keys = ["n", "median novelty", "share > 1", "AUROC novelty", "AUROC entropy"]
    print(f"{'set':<18}" + "".join(f"{k:>16}" for k in keys))
    for r in res["rows"]:
        cells = [f"{r['n']:>16d}"] + [f"{r[k]:>16.3f}" for k in keys[1:]]
        print(f"{r['set']:<18}" + "".join(cells).replace("nan", "  –"))
    return write_output(args.output, res)


if __name__ == "__main__":
    raise SystemExit(main())
