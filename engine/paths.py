"""Where the engine finds reference data and keeps caches.

* ``data_dir()``: the reference-label folder (``../shared/data`` beside the repository by
  default; override with ``GENNAPE_DATA_DIR``).  It is never copied into the repository and
  may be absent: callers check ``.exists()``.
* ``cache_dir()``: on-disk caches (CGs, eigenvalues, embeddings); ``GENNAPE_CACHE_DIR`` or
  ``<repo>/.cache``.
* ``assets_dir()``: shipped checkpoint and demo files.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("GENNAPE_DATA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


def cache_dir() -> Path:
    env = os.environ.get("GENNAPE_CACHE_DIR")
    path = Path(env) if env else REPO_ROOT / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def assets_dir() -> Path:
    return REPO_ROOT / "assets"
