"""Shared test configuration: hypothesis profile, seeds, reference-data location."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

settings.register_profile("ci", deadline=None, derandomize=True, database=None, max_examples=25)
settings.register_profile("dev", deadline=None, max_examples=25)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One torch thread for tiny tensors (intra-op threads only add synchronisation cost on a
    shared 2-core machine); files opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference-label folder; tests using it skip with a reason when it is absent."""
    from engine.paths import data_dir

    path = data_dir()
    if not path.exists():
        pytest.skip(f"reference data folder {path} is absent (set GENNAPE_DATA_DIR to run this test)")
    return path
