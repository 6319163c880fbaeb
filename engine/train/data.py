"""Training data for GENNAPE: labelled datasets by family / dataset name.

``training_dataset(["nb201", "nb101"])`` concatenates the labelled datasets behind the names:

=============== =============================================================================
nb201           NAS-Bench-201 CIFAR-10 from the embedded package (15,625; ``load_default``)
nb201_test      NAS-Bench-201 CIFAR-10 200-epoch test accuracy (reference folder; the paper's)
nb101           NAS-Bench-101, NASLib zero-cost file (500; reference folder)
nb301           NAS-Bench-301 surrogate accuracies, NASLib file (725; reference folder)
<name>          any ``engine.data.SHARED_NAMES`` entry, or a CSV / JSONL file path
=============== =============================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.train.callbacks import Callback

FAMILY_DATASETS = {"nb201": "default", "nb201_test": "nb201_test_cifar10", "nb101": "nb101_naslib",
                   "nb301": "nb301_naslib"}


def load_labels_file(path: str | Path, callback: Callback | None = None, *, labelled_only: bool = False,
                     warn: Callable[[str], None] | None = None):
    """A labelled CSV / JSONL file (``engine.data.parse_table`` format) as an ``ArchDataset``;
    raises ``ValueError`` naming the first bad row when any row is rejected.  The parser's notices
    (labels read as fractions, a mix of fractions and percent) go to ``warn`` (prefixed with the
    file); ``labelled_only`` leaves out rows without a label.

    ONNX networks are labelled as the app's Data page reads them (:func:`_onnx_labels`): a folder or
    a ``.zip`` of ``.onnx`` files with a labels CSV (``file`` / ``id`` and a label column), or such a
    CSV itself, naming ``.onnx`` files in its folder."""
    from engine.data import UploadError, parse_table
    from engine.data.uploads import is_onnx_labels_table
    from engine.graphs.cg import at_path

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: labels file not found")
    if p.is_dir() or p.suffix.lower() == ".zip" or (p.suffix.lower() == ".csv"
                                                   and is_onnx_labels_table(p.read_bytes(), p.name)):
        ds = _onnx_labels(p, warn)
        return ds.labelled() if labelled_only else ds
    try:
        result = parse_table(p.read_bytes(), filename=p.name)
    except UploadError as exc:  # its message starts with the file name: give the path instead
        raise ValueError(at_path(p, str(exc))) from None
    if result.errors:
        raise ValueError(f"{p}: {result.errors[0]} ({len(result.errors)} bad row(s) in total)")
    if warn is not None:
        for note in result.warnings:  # these name rows without a label too
            warn(f"{p}: {note}")
    return result.dataset.labelled() if labelled_only else result.dataset


def _files_below(root: Path, suffix: str) -> list[Path]:
    """Files ending in ``suffix`` in ``root`` and its sub-folders, hidden ones (``.venv``, ``.git``,
    dot-files) left out, sorted by path."""
    import os

    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder) / f for f in files if f.lower().endswith(suffix) and not f.startswith(".")]
    return sorted(found)


def _named_in(labels_csv: Path) -> set[str]:
    """The values of a labels CSV's file column (``file`` / ``filename`` / ... / ``id``), as paths."""
    from engine.data.uploads import _decode, _norm_path, _read_csv, file_column

    cols, rows, _ = _read_csv(_decode(labels_csv.read_bytes(), labels_csv.name), labels_csv.name)
    col = file_column(cols)
    return {_norm_path(rec[col]) for _, rec in rows} if col else set()


def _onnx_labels(p: Path, warn: Callable[[str], None] | None):
    """ONNX networks and their labels CSV (see :func:`load_labels_file`) read as the app reads a zip
    of them (``engine.studio.parse_upload``): the same matching of file names and the same errors.
    A folder brings its ``.onnx`` files and CSVs (hidden sub-folders left out); a CSV by itself
    brings the ``.onnx`` files below its folder that it names (by path, name, or name without
    ``.onnx``), so other networks lying around are neither read nor reported."""
    from engine.data.uploads import zip_files
    from engine.studio import parse_upload

    if p.suffix.lower() == ".zip":
        raw, name = p.read_bytes(), p.name
    else:
        root = p if p.is_dir() else p.parent
        onnx = _files_below(root, ".onnx")
        if not p.is_dir():
            named = _named_in(p)
            onnx = [f for f in onnx if {f.relative_to(root).as_posix(), f.name, f.stem} & named]
        if not onnx:
            hint = ""
            if not p.is_dir():
                hint = f" (the ones it names, below {root})"
                if not any(n.lower().endswith(".onnx") for n in named):  # ids, not file names
                    hint += (". A table of workspace ids and labels is the app's format; here give family + spec "
                             "(or cg) columns, or the .onnx files its rows name")
            raise ValueError(f"{p}: no .onnx files to go with the labels{hint}")
        labels = [p] if not p.is_dir() else _files_below(root, ".csv")
        items = [(f.relative_to(root).as_posix(), f.read_bytes()) for f in [*onnx, *labels]]
        raw, name = zip_files(items), f"{root.name or 'onnx'}.zip"
    out = parse_upload(raw, name)
    if len(out.errors):
        first = out.errors.iloc[0]
        where = f"{first['file']}: " if first.get("file") and first.get("file") != p.name else ""
        row = f"row {int(first['row'])}, " if first.get("row") is not None and first["row"] == first["row"] else ""
        raise ValueError(f"{p}: {where}{row}{first['field']}: {first['reason']} ({len(out.errors)} problem(s) in total)")
    if warn is not None:
        for note in out.warnings:
            warn(f"{p}: {note}")
    return out.dataset


def load_one(name: str, data_dir: str | Path | None = None, callback: Callback | None = None):
    """The ``ArchDataset`` behind one name (see module docstring), CGs built."""
    from engine.data import SHARED_NAMES, load_default, load_shared

    key = FAMILY_DATASETS.get(name, name)
    if key == "default":
        return load_default("cifar10", callback=callback)
    if key in SHARED_NAMES:
        return load_shared(key, data_dir, callback=callback)
    if Path(name).suffix.lower() in (".csv", ".jsonl", ".json") and Path(name).exists():
        return load_labels_file(name, callback)
    raise KeyError(f"unknown training family / dataset {name!r}; expected one of "
                   f"{sorted(FAMILY_DATASETS)}, {list(SHARED_NAMES)} or a CSV/JSONL file")


def training_dataset(names: list[str], data_dir: str | Path | None = None, max_per_family: int | None = None,
                     seed: int = 0, callback: Callback | None = None):
    """Labelled rows of every named dataset, each optionally subsampled (seeded) to
    ``max_per_family`` rows, concatenated."""
    from engine.data import ArchDataset

    parts = []
    for name in names:
        ds = load_one(name, data_dir, callback).labelled()
        if max_per_family is not None and len(ds) > max_per_family:
            idx = np.sort(np.random.default_rng(seed).choice(len(ds), max_per_family, replace=False))
            ds = ds.subset(idx)
        parts.append(ds)
    if not parts:
        raise ValueError("no training datasets named")
    return parts[0] if len(parts) == 1 else ArchDataset.concat(parts)
