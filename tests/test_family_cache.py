"""Family CG disk cache: identical CGs, no rebuild when warm, corruption, compaction, workers."""

from __future__ import annotations

import warnings

import pytest

from engine.families import SpecError, get
from engine.families import cache as cg_cache
from engine.families.cache import cached_cgs, family_cache_dir
from engine.families.nb201 import arch_to_key, arch_to_naslib
from engine.train.callbacks import History


@pytest.fixture(autouse=True)
def _fresh_memo():
    cg_cache._LOADED.clear()
    yield
    cg_cache._LOADED.clear()


def _stages(h: History) -> set[str]:
    return {s for s, *_ in h.events}


def test_cold_then_warm_gives_identical_cgs(tmp_path):
    fam = get("nb201")
    specs = fam.sample(40, seed=2)
    h1 = History()
    cold = cached_cgs("nb201", specs, callback=h1, root=tmp_path)
    assert "cg-cache" in _stages(h1) and h1.events[-1][1:3] == (40, 40)
    shards = list(family_cache_dir(fam, tmp_path).glob("shard-*.npz"))
    assert len(shards) == 1
    cg_cache._LOADED.clear()  # read back from disk like a new process
    h2 = History()
    warm = cached_cgs("nb201", specs, callback=h2, root=tmp_path)
    assert "cg-cache" not in _stages(h2) and "cg-load" in _stages(h2)
    for spec, a, b in zip(specs, cold, warm):
        direct = fam.to_cg(spec)
        assert a.to_json() == b.to_json() == direct.to_json()
    assert warm[0] is not cold[0] and warm[0].nodes[0] is not cold[0].nodes[0]


def test_other_encodings_and_duplicates_hit_the_cache(tmp_path):
    fam = get("nb201")
    arch = fam.sample(1, seed=5)[0]
    cached_cgs("nb201", [arch], root=tmp_path)
    h = History()
    out = cached_cgs("nb201", [arch_to_key(arch), arch_to_naslib(arch), arch], callback=h, root=tmp_path)
    assert "cg-cache" not in _stages(h)
    assert len({cg.to_json() for cg in out}) == 1 and out[0] is not out[1]


def test_to_cg_options_are_part_of_the_key(tmp_path):
    fam = get("nb201")
    arch = fam.sample(1, seed=8)[0]
    c10 = cached_cgs("nb201", [arch], root=tmp_path)[0]
    c100 = cached_cgs("nb201", [arch], root=tmp_path, options={"num_classes": 100})[0]
    assert c100.output_node.out_shape == (1, 1, 100) and c10.output_node.out_shape == (1, 1, 10)
    assert c100.to_json() == fam.to_cg(arch, num_classes=100).to_json()


def test_nb101_and_invalid_specs(tmp_path):
    fam = get("nb101")
    specs = fam.sample(5, seed=1)
    out = cached_cgs("nb101", specs, root=tmp_path)
    assert [cg.to_json() for cg in out] == [fam.to_cg(s).to_json() for s in specs]
    with pytest.raises(SpecError, match=r"specs\[1\]: nb101 spec: ops\[0\]"):
        cached_cgs("nb101", [specs[0], {"matrix": [[0, 1], [0, 0]], "ops": ["output", "output"]}], root=tmp_path)
    with pytest.raises(KeyError, match="unknown family"):
        cached_cgs("nope", [], root=tmp_path)


def test_corrupt_shard_is_ignored_and_rebuilt(tmp_path):
    specs = get("nb201").sample(6, seed=3)
    cached_cgs("nb201", specs, root=tmp_path)
    (shard,) = family_cache_dir("nb201", tmp_path).glob("shard-*.npz")
    shard.write_bytes(b"not an npz file")
    cg_cache._LOADED.clear()
    h = History()
    with pytest.warns(UserWarning, match="unreadable shard"):
        out = cached_cgs("nb201", specs, callback=h, root=tmp_path)
    assert "cg-cache" in _stages(h)
    assert [cg.to_json() for cg in out] == [get("nb201").to_cg(s).to_json() for s in specs]


def test_shards_are_compacted(tmp_path, monkeypatch):
    specs = get("nb201").sample(8, seed=4)
    for k in range(4):  # four shards of two CGs (the first spec is in every call)
        cached_cgs("nb201", specs[2 * k:2 * k + 2] + specs[:1], root=tmp_path)
    folder = family_cache_dir("nb201", tmp_path)
    assert len(list(folder.glob("shard-*.npz"))) == 4
    monkeypatch.setattr(cg_cache, "MAX_SHARDS", 2)
    h = History()
    out = cached_cgs("nb201", specs, callback=h, root=tmp_path)
    assert len(list(folder.glob("shard-*.npz"))) == 1 and "cg-cache" not in _stages(h)
    assert [cg.to_json() for cg in out] == [get("nb201").to_cg(s).to_json() for s in specs]


def test_version_changes_the_folder(tmp_path, monkeypatch):
    fam = get("nb201")
    before = family_cache_dir(fam, tmp_path)
    monkeypatch.setattr(type(fam), "cg_version", "nb201-test", raising=False)
    assert family_cache_dir(fam, tmp_path) != before


def test_worker_processes_build_the_same_cgs(tmp_path, monkeypatch):
    monkeypatch.setattr(cg_cache, "CHUNK", 8)
    specs = get("nb201").sample(20, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the in-process fallback warns
        out = cached_cgs("nb201", specs, workers=2, root=tmp_path)
    assert [cg.to_json() for cg in out] == [get("nb201").to_cg(s).to_json() for s in specs]


def test_worker_processes_are_not_spawned_by_default_from_a_script_run_by_path(monkeypatch):
    """A spawned worker imports the main module again: for ``python my_script.py`` that re-ran
    the whole unguarded script once per worker."""
    import sys
    import types

    from engine.families import cache

    script = types.ModuleType("__main__")
    script.__file__, script.__spec__ = "/tmp/my_script.py", None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not cache._spawn_safe()
    script.__spec__ = object()  # python -m package.module
    assert cache._spawn_safe()
    del script.__file__  # an interactive session
    script.__spec__ = None
    assert cache._spawn_safe()
