"""Engine side of the app (``engine/studio.py``, ``python -m engine studio-assets``).

Also defines the small stand-ins the app tests share (imported by the other ``test_app_*``
files): :class:`TinyPredictor`, a deterministic predictor with the GennapePredictor interface
(embed / memberships / predict / finetune / save / model_card) built from CG op statistics,
and :func:`tiny_workspace`.  No real checkpoint is needed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import studio
from engine.data.dataset import ArchDataset
from engine.data.provenance import Provenance
from engine.graphs.cg import CGBuilder
from engine.graphs.ops import OPS

PROV = Provenance("CIFAR-10", "validation accuracy", "validation", 200, (0,), "unit-test labels")


# --- shared stand-ins ----------------------------------------------------------------------------

class TinyPredictor:
    """Deterministic stand-in for ``engine.model.GennapePredictor``.

    embedding = fixed random projection of (op histogram, log FLOPs, log params, size);
    memberships = softmax over distances to 3 fixed centres; score = linear read-out.
    ``finetune`` returns a *new* predictor whose read-out is a ridge fit to the labels.
    """

    K = 3
    DIM = 8

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.proj = rng.normal(size=(len(OPS) + 3, self.DIM))
        self.centres = rng.normal(size=(self.K, self.DIM))
        self.w = rng.normal(size=self.DIM) * 0.1
        self.b = 0.0
        self.finetuned = 0
        self.model_card = {"name": "tiny test predictor", "id": "tiny-0", "clusters": self.K}

    def _x(self, cgs) -> np.ndarray:
        rows = []
        for cg in cgs:
            h = np.zeros(len(OPS))
            for nd in cg.nodes:
                h[OPS.index(nd.op)] += 1
            h /= max(1, cg.num_nodes)
            rows.append(np.concatenate([h, [np.log1p(cg.flops) / 20, np.log1p(cg.params) / 15, cg.num_nodes / 50]]))
        return np.asarray(rows, dtype=float).reshape(len(rows), len(OPS) + 3)

    def embed(self, cgs) -> np.ndarray:
        return (self._x(cgs) @ self.proj).astype(np.float32)

    def memberships(self, cgs) -> np.ndarray:
        z = self.embed(cgs).astype(float)
        d = ((z[:, None, :] - self.centres[None]) ** 2).sum(-1)
        e = np.exp(-(d - d.min(axis=1, keepdims=True)))
        return e / e.sum(axis=1, keepdims=True)

    def predict_with_embeddings(self, cgs, callback=None, reference=None) -> tuple[pd.DataFrame, np.ndarray]:
        return self.predict(cgs, callback, reference), self.embed(cgs)

    def predict(self, cgs, callback=None, reference=None) -> pd.DataFrame:
        z = self.embed(cgs).astype(float)
        u = self.memberships(cgs)
        score = z @ self.w + self.b
        out = pd.DataFrame({"score": score, "flops": [c.flops for c in cgs], "params": [c.params for c in cgs],
                            "cluster": u.argmax(1)})
        for j in range(self.K):
            out[f"membership_{j}"] = u[:, j]
        out["mlp_ensemble"] = score
        out["flops_head"] = np.log1p(out["flops"].to_numpy(dtype=float))
        if callback is not None:
            callback("predict", len(cgs), len(cgs), {})
        return out

    def finetune(self, cgs, acc, k=None, seed: int = 0, callback=None, *, epochs: int | None = None,
                 selection: str | None = None) -> TinyPredictor:
        epochs = 3 if epochs is None else epochs
        new = copy.deepcopy(self)
        z = self.embed(cgs).astype(float)
        y = np.asarray(acc, dtype=float)
        a = np.c_[z, np.ones(len(z))]
        coef = np.linalg.solve(a.T @ a + 1e-2 * np.eye(a.shape[1]), a.T @ y)
        new.w, new.b = coef[:-1], coef[-1]
        new.finetuned = self.finetuned + 1
        for e in range(1, epochs + 1):
            if callback is not None:
                callback("finetune", e, epochs, {"loss": 1.0 / e})
        return new

    def save(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "tiny.json").write_text(json.dumps({"w": self.w.tolist(), "b": self.b}))


def tiny_cgs(n: int, seed: int = 0):
    """``n`` small distinct CGs (conv stacks of varying width / depth / pooling)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = CGBuilder(f"tiny{i}", input_hwc=(16, 16, 3))
        x = b.input()
        for _ in range(int(rng.integers(1, 4))):
            x = b.act(b.bn(b.conv(x, int(rng.choice([8, 16, 24])), int(rng.choice([1, 3])))), "relu")
            if rng.random() < 0.4:
                x = b.pool(x, "maxpool", 3, 1, 1)
        out.append(b.output(b.linear(b.mean(x), 10)))
    return out


def tiny_dataset(n: int = 40, seed: int = 0, labelled: bool = True, name: str = "tinybench") -> ArchDataset:
    cgs = tiny_cgs(n, seed)
    pred = TinyPredictor()
    labels = None
    if labelled:  # labels correlated with the tiny model's score, plus noise
        s = pred.predict(cgs)["score"].to_numpy()
        labels = 80 + 5 * (s - s.mean()) / (s.std() + 1e-9) + np.random.default_rng(seed).normal(0, 1, n)
    return ArchDataset.from_cgs(name, cgs, labels, PROV, family="custom", ids=[f"a{i}" for i in range(n)])


def tiny_workspace(n: int = 40, with_upload: bool = False) -> studio.Workspace:
    pred = TinyPredictor()
    part = studio.part_from_dataset(tiny_dataset(n), source="benchmark", prefix="tinybench", predictor=pred)
    samples = studio.part_from_dataset(tiny_dataset(8, seed=5, labelled=False, name="tinysamples"),
                                       source="sample", prefix="sample:custom", predictor=pred)
    ws = studio.project_workspace(studio.concat_parts([part, samples], pred.model_card), perplexity=5, seed=0)
    if with_upload:
        up = studio.part_from_dataset(tiny_dataset(3, seed=9, labelled=False, name="mine.csv"), source="upload",
                                      prefix="upload:mine.csv", predictor=pred)
        ws = studio.extend(ws, up)
    return ws


# --- tests ---------------------------------------------------------------------------------------

def test_membership_entropy_bounds():
    u = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    h = studio.membership_entropy(u)
    assert h[0] == pytest.approx(0.0, abs=1e-6)
    assert h[1] == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < h[2] < 1.0


def test_part_from_dataset_scores_and_ids():
    part = studio.part_from_dataset(tiny_dataset(12), source="benchmark", prefix="tb", predictor=TinyPredictor())
    f = part.frame
    assert len(part) == 12 and f["id"].iloc[0] == "tb:a0"
    assert list(f.columns[:len(studio.CORE_COLUMNS)]) == list(studio.CORE_COLUMNS)
    assert part.membership_columns == ["membership_0", "membership_1", "membership_2"]
    assert {"member_mlp_ensemble", "member_flops_head"} <= set(part.member_columns)
    np.testing.assert_allclose(part.memberships().sum(1), 1.0, atol=1e-6)
    assert (f["flops"] > 0).all() and (f["params"] > 0).all()
    assert part.embedding.shape == (12, TinyPredictor.DIM)
    assert set(part.cgs) == set(f["id"])  # CG-only rows keep their CG
    assert f["provenance"].iloc[0] == PROV.label() and PROV.label() in part.provenances


def test_workspace_projection_and_extend_do_not_mutate():
    ws = tiny_workspace(30)
    assert ws.has_map and np.isfinite(ws.frame[["tsne_x", "tsne_y", "pca_x", "pca_y"]].to_numpy()).all()
    before = ws.frame.copy()
    up = studio.part_from_dataset(tiny_dataset(3, seed=3, labelled=False, name="up.csv"), source="upload",
                                  prefix="upload:up.csv", predictor=TinyPredictor())
    ws2 = studio.extend(ws, up)
    assert len(ws2) == len(ws) + 3 and len(ws) == len(before)
    pd.testing.assert_frame_equal(ws.frame, before)  # the original is untouched
    new = ws2.frame.iloc[-3:]
    assert (new["source"] == "upload").all()
    assert np.isfinite(new[["tsne_x", "tsne_y", "pca_x", "pca_y"]].to_numpy()).all()
    # PCA of new rows equals the stored projection
    mean, comps = ws.pca
    np.testing.assert_allclose(new[["pca_x", "pca_y"]].to_numpy(), (up.embedding - mean) @ comps.T, atol=1e-4)
    # adding the same rows again is a no-op
    assert studio.extend(ws2, up) is ws2


def test_extend_with_unscored_part_keeps_the_map():
    ws = tiny_workspace(20)
    unscored = studio.part_from_dataset(tiny_dataset(2, seed=4, labelled=False, name="u.csv"), source="upload",
                                        prefix="upload:u.csv")
    ws2 = studio.extend(ws, unscored)
    assert ws2.has_embedding and ws2.has_map and len(ws2) == len(ws) + 2
    assert np.isnan(ws2.frame["score"].iloc[-1]) and np.isnan(ws2.frame["pca_x"].iloc[-1])
    nn = studio.nearest_neighbours(ws2, ws2.frame["id"].iloc[0], k=5)
    assert len(nn) == 5 and not nn["id"].str.startswith("upload:u.csv").any()
    assert studio.nearest_neighbours(ws2, ws2.frame["id"].iloc[-1]).empty


def test_nearest_neighbours_sorted_and_exclude_self():
    ws = tiny_workspace(25)
    aid = ws.frame["id"].iloc[3]
    nn = studio.nearest_neighbours(ws, aid, k=6)
    assert len(nn) == 6 and aid not in set(nn["id"])
    assert (np.diff(nn["distance"].to_numpy()) >= -1e-9).all()
    with pytest.raises(KeyError, match="not in this workspace"):
        studio.nearest_neighbours(ws, "nope")


def test_save_load_roundtrip_without_pickle(tmp_path):
    ws = tiny_workspace(20, with_upload=True)
    npz, side = studio.save_workspace(ws, tmp_path / "ws.npz")
    assert side.name == "ws.json" and json.loads(side.read_text())["format"] == studio.WORKSPACE_FORMAT
    with np.load(npz, allow_pickle=False) as z:  # loads with pickling disabled
        assert z["s__id"].dtype.kind == "U"
    back = studio.load_workspace(npz)
    pd.testing.assert_frame_equal(back.frame, ws.frame, check_dtype=False, atol=1e-3)
    assert back.embedding.shape == ws.embedding.shape
    np.testing.assert_allclose(back.embedding, ws.embedding, atol=1e-2)
    assert set(back.cgs) == set(ws.cgs)
    aid = ws.frame["id"].iloc[-1]
    assert studio.cg_of(back, aid).fingerprint() == studio.cg_of(ws, aid).fingerprint()
    assert back.provenances == dict(ws.provenances) and back.model_card["id"] == "tiny-0"


def test_load_workspace_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="studio-assets"):
        studio.load_workspace(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a GENNAPE Studio workspace"):
        studio.load_workspace(tmp_path / "bad.npz")
    (tmp_path / "bad.json").write_text(json.dumps({"format": studio.WORKSPACE_FORMAT, "version": 1, "columns": []}))
    with pytest.raises(ValueError, match="cannot read workspace arrays"):
        studio.load_workspace(tmp_path / "bad.npz")


def test_build_default_workspace_small(tmp_path):
    ws = studio.build_default_workspace(TinyPredictor(), dataset=tiny_dataset(30), samples_per_family=2,
                                        families=["nb201"], limit=20, perplexity=5)
    f = ws.frame
    assert (f["source"] == "benchmark").sum() == 20 and (f["source"] == "sample").sum() == 2
    assert set(f.loc[f["source"] == "sample", "family"]) == {"nb201"}
    assert ws.has_map and ws.meta["model_key"] == "tiny-0" and ws.meta["tsne"]["perplexity"] == 5
    # a sample row's CG is rebuilt from its spec
    sid = f.loc[f["source"] == "sample", "id"].iloc[0]
    cg = studio.cg_of(ws, sid)
    assert cg.flops == pytest.approx(f.loc[f["id"] == sid, "flops"].iloc[0])


def test_cli_studio_assets_writes_small_file(tmp_path, monkeypatch):
    import engine.model as model
    from engine.__main__ import main

    monkeypatch.setattr(model, "load_default", lambda *a, **k: TinyPredictor(), raising=False)
    monkeypatch.setattr("engine.data.load_default", lambda *a, **k: tiny_dataset(25))
    out = tmp_path / "assets" / "ws.npz"
    rc = main(["studio-assets", "--output", str(out), "--samples-per-family", "1", "--perplexity", "5",
               "--threads", "1"])
    assert rc == 0 and out.exists() and (out.parent / "ws.json").exists()
    ws = studio.load_workspace(out)
    assert (ws.frame["source"] == "benchmark").sum() == 25 and (ws.frame["source"] == "sample").sum() >= 1
    assert main(["studio-assets", "--output", str(tmp_path / "x.txt")]) == 2  # bad input -> exit 2


def test_ranking_metrics_per_dataset():
    ws = tiny_workspace(40)
    m = studio.ranking_metrics(ws)
    assert list(m["dataset"]) == ["tinybench"] and m["n"].iloc[0] == 40
    assert 0.5 < m["srcc"].iloc[0] <= 1.0  # labels were made from the score plus small noise
    assert "ndcg@10" in m.columns and "precision@10" in m.columns
    assert list(m["task"]) == ["CIFAR-10"] and "mae" not in m.columns  # scores are not accuracies


def test_ranking_metrics_never_mix_tasks_within_a_dataset():
    """One upload labelling CIFAR-10 cells and ImageNet networks (its provenance names no dataset)
    gives one row per task."""
    ws = tiny_workspace(14)
    f = ws.frame
    labelled = np.isfinite(f["label"].to_numpy())
    fam = np.where(np.cumsum(labelled) <= 7, "nb201", "ofa_pn")
    m = studio.ranking_metrics(dataclasses.replace(ws, frame=f.assign(family=fam, provenance="upload")))
    assert list(zip(m["dataset"], m["task"], m["n"])) == [("tinybench", "CIFAR-10", 7), ("tinybench", "ImageNet", 7)]
    assert "precision@10" not in m.columns  # 7 rows: every top 10 is all of them
    # a small group first and a large one after: columns keep the order of the fuller row
    ws2 = tiny_workspace(30)
    f2 = ws2.frame
    fam = np.where(np.cumsum(np.isfinite(f2["label"].to_numpy())) <= 4, "nb201", "ofa_pn")
    m = studio.ranking_metrics(dataclasses.replace(ws2, frame=f2.assign(family=fam, provenance="upload")))
    assert m["n"].tolist()[0] == 4 and np.isnan(m["precision@10"].iloc[0])
    assert list(m.columns) == list(studio.ranking_metrics(ws2).columns)


def test_architecture_table_columns():
    ws = tiny_workspace(10)
    t = studio.architecture_table(ws)
    assert {"id", "family", "score", "rank", "label", "MFLOPs", "M params", "provenance"} <= set(t.columns)
    assert t.loc[t["score"].idxmax(), "rank"] == 1
    # ranks are within a task: the best ImageNet row is ranked 1 among ImageNet rows
    f = ws.frame
    mixed = dataclasses.replace(ws, frame=f.assign(family=np.where(np.arange(len(f)) % 2 == 0, "nb201", "ofa_pn"),
                                                   provenance="x"))
    t = studio.architecture_table(mixed)
    for task, grp in t.groupby("task"):
        assert sorted(grp["rank"]) == list(range(1, len(grp) + 1)), task


def test_parse_upload_csv_good_and_bad_rows():
    from engine.families import get

    specs = get("nb201").sample(2, seed=1)
    raw = ("family,spec,label\n" + "".join(f"nb201,{s},{70 + i}\n" for i, s in enumerate(specs))
           + "nb201,not-a-spec,50\nnosuchfamily,x,1\n").encode()
    out = studio.parse_upload(raw, "mine.csv")
    assert out.ok_rows == 2 and len(out.errors) == 2
    assert set(out.errors["row"]) == {4, 5} and out.errors["reason"].str.len().min() > 5
    part = studio.part_from_upload(out, TinyPredictor())
    assert len(part) == 2 and (part.frame["source"] == "upload").all()
    assert part.frame["id"].iloc[0].startswith("upload:mine.csv:")


@pytest.mark.parametrize("name,raw,match", [
    ("empty.csv", b"", "empty"),
    ("model.exe", b"MZ", "unsupported file type"),
    ("junk.onnx", b"\x00\x01garbage", "junk.onnx"),
    ("bad.json", b"{not json", "not valid JSON"),
    ("noheader.csv", b"a,b\n1,2\n", "spec"),
    ("bad.zip", b"PK\x03\x04broken", "zip"),
    ("weird.pkl", b"\x80\x04K\x01.", "weird.pkl"),
])
def test_parse_upload_never_raises(name, raw, match):
    out = studio.parse_upload(raw, name)
    assert out.dataset is None and len(out.errors) >= 1
    assert out.errors["reason"].str.contains(match, case=False).any() or match in out.summary()


def test_parse_upload_cg_json_and_zip():
    cg = tiny_cgs(1)[0]
    out = studio.parse_upload(cg.to_json().encode(), "net.json")
    assert out.ok_rows == 1 and out.errors.empty
    part = studio.part_from_upload(out, TinyPredictor())
    assert part.frame["id"].iloc[0] == "upload:net.json:net" and "upload:net.json:net" in part.cgs
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no onnx here")
    out = studio.parse_upload(buf.getvalue(), "models.zip")
    assert out.dataset is None and "no .onnx" in out.errors["reason"].iloc[0]


def test_parse_upload_rejects_a_cg_the_feature_table_cannot_hold():
    """A CG JSON upload with a dimension beyond int32 is a row error naming the node and field;
    before, it loaded and then made every later prediction of the process fail."""
    data = json.loads(tiny_cgs(1)[0].to_json())
    data["nodes"][1]["in"] = [2**40, 8, 8]
    out = studio.parse_upload(json.dumps(data).encode(), "huge.json")
    assert out.dataset is None
    assert out.errors["reason"].str.contains(r"nodes\[1\]\.in: .*at most 2,147,483,647").any()


def test_choose_finetune_ids_strategies():
    ws = tiny_workspace(40)
    f = ws.frame
    r = studio.choose_finetune_ids(f, 5, "random", seed=1)
    assert len(r) == 5 == len(set(r)) and r == studio.choose_finetune_ids(f, 5, "random", seed=1)
    c = studio.choose_finetune_ids(f, 3, "spread over clusters", seed=0)
    lab = f[f["id"].isin(c)]
    assert lab["cluster"].nunique() == min(3, f.loc[f["label"].notna(), "cluster"].nunique())
    assert studio.choose_finetune_ids(f, 0, "manual", manual_ids=["tinybench:a1"]) == ["tinybench:a1"]
    with pytest.raises(ValueError, match="no label"):
        studio.choose_finetune_ids(f, 1, "manual", manual_ids=["sample:custom:a0"])
    with pytest.raises(ValueError, match="only 40 labelled"):
        studio.choose_finetune_ids(f, 41, "random")


def test_finetune_and_evaluate_uses_a_copy():
    ws = tiny_workspace(40)
    pred = TinyPredictor()
    w0 = pred.w.copy()
    f = ws.frame[ws.frame["label"].notna()]
    train = studio.choose_finetune_ids(f, 5, "random")
    ev = [i for i in f["id"] if i not in set(train)]
    cg = lambda ids: [studio.cg_of(ws, i) for i in ids]  # noqa: E731
    lab = lambda ids: f.set_index("id").loc[ids, "label"].to_numpy()  # noqa: E731
    out = studio.finetune_and_evaluate(pred, cg(train), lab(train), cg(ev), lab(ev), train_ids=train, eval_ids=ev,
                                       epochs=3)
    np.testing.assert_array_equal(pred.w, w0)  # the shared model is untouched
    assert out.model is not pred and out.model.finetuned == 1
    assert len(out.after) == len(ev) and not np.allclose(out.after, out.before)
    assert {"srcc", "kendall_tau"} <= set(out.metrics_after) and out.metrics_after["n"] == len(ev)
    assert [e[1] for e in out.history if e[0] == "finetune"] == [1, 2, 3]
    t = out.metrics_table()
    assert list(t.columns) == ["metric", "before", "after"] and len(t) >= 5
    data = studio.save_model_zip(out.model)
    assert "checkpoint/tiny.json" in zipfile.ZipFile(BytesIO(data)).namelist()


@pytest.fixture(scope="module")
def real_tiny_predictor():
    """A real ``GennapePredictor`` with the seconds-scale preset, fitted on synthetic CGs."""
    import torch

    from engine.model.config import GennapeConfig
    from engine.model.predictor import GennapePredictor
    from engine.model.synthetic import synthetic_dataset

    torch.manual_seed(0)
    cgs, acc = synthetic_dataset(48, seed=0)
    pred = GennapePredictor(GennapeConfig.tiny()).fit(cgs, acc)
    return pred


def test_real_predictor_end_to_end(real_tiny_predictor, tmp_path):
    """Workspace build, comparable upload scores, fine-tuning on a copy, with the real model."""
    import torch

    from engine.model.synthetic import synthetic_dataset

    pred = real_tiny_predictor
    cgs, acc = synthetic_dataset(30, seed=1)
    ds = ArchDataset.from_cgs("synth", cgs, acc, PROV, family="custom", ids=[f"s{i}" for i in range(30)])
    ws = studio.build_default_workspace(pred, dataset=ds, samples_per_family=1, families=["nb201"], perplexity=5,
                                        reference_size=20)
    assert ws.has_map and ws.num_clusters == pred.n_clusters and len(ws.meta["reference_ids"]) == 20
    assert set(ws.member_columns) >= {"member_cl_fcm_t", "member_flops_baseline"}
    # the checkpoint key survives save / load, so the app can tell a stale workspace
    pred.save(tmp_path / "ckpt")
    from engine.model.predictor import GennapePredictor

    assert studio.model_key(GennapePredictor.load(tmp_path / "ckpt")) == ws.meta["model_key"]
    # an upload scored with the workspace's reference gets the same score as in the workspace
    ref = studio.workspace_reference(ws, pred)
    again = studio.part_from_dataset(ds.subset([0, 1, 2]), source="upload", prefix="again", predictor=pred,
                                     reference=ref)
    np.testing.assert_allclose(again.frame["score"].to_numpy(), ws.frame["score"].to_numpy()[:3], rtol=1e-4)
    # ... and `engine predict --reference` with the downloadable reference population gives them too
    from engine.cli.predict import read_input

    (tmp_path / "ref.jsonl").write_bytes(studio.reference_jsonl(ws))
    ids, ref_cgs = read_input(str(tmp_path / "ref.jsonl"))
    assert ids == ws.meta["reference_ids"]
    cli = pred.predict([studio.cg_of(ws, a) for a in ws.frame["id"][:3]], reference=pred.reference(ref_cgs))
    np.testing.assert_allclose(cli["score"].to_numpy(), ws.frame["score"].to_numpy()[:3], rtol=1e-4)
    # fine-tuning works on a deep copy
    before = {k: v.clone() for k, v in pred.state_dict().items()}
    f = ws.frame[ws.frame["label"].notna()]
    train, ev = f["id"].tolist()[:5], f["id"].tolist()[5:]
    out = studio.finetune_and_evaluate(pred, [studio.cg_of(ws, a) for a in train], f["label"].iloc[:5].to_numpy(),
                                       [studio.cg_of(ws, a) for a in ev], f["label"].iloc[5:].to_numpy(),
                                       train_ids=train, eval_ids=ev, epochs=2)
    assert all(torch.equal(before[k], v) for k, v in pred.state_dict().items())
    assert out.model is not pred and out.model.model_card["finetune"]["k"] == 5
    assert out.model.config.finetune.head_epochs == 2 and pred.config.finetune.head_epochs != 2
    assert np.isfinite(out.after).all() and "srcc" in out.metrics_after
    # the downloaded checkpoint records what the app did; the session's model card is left as it is
    out.settings.update({"family": "custom", "strategy": "random"})
    with zipfile.ZipFile(BytesIO(out.checkpoint_zip())) as zf:
        card = json.loads(zf.read("checkpoint/model_card.json"))["finetune"]
    assert card["k"] == 5 and card["app"]["settings"]["family"] == "custom" and card["app"]["train_ids"] == train
    assert card["app"]["held_out"]["n"] == len(ev)
    assert card["app"]["held_out"]["after"]["srcc"] == pytest.approx(out.metrics_after["srcc"])
    assert "app" not in out.model.model_card["finetune"]


def test_parse_upload_onnx_model():
    import io

    import torch
    from torch import nn

    # (no BatchNorm: the ONNX exporter folds it into the convolution in eval mode)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 10)).eval()
    buf = io.BytesIO()
    torch.onnx.export(m, torch.randn(1, 3, 32, 32), buf, dynamo=False)
    out = studio.parse_upload(buf.getvalue(), "tiny.onnx")
    assert out.ok_rows == 1 and out.errors.empty
    part = studio.part_from_upload(out, TinyPredictor())
    row = part.frame.iloc[0]
    assert row["source"] == "upload" and row["spec"] == "" and row["id"] in part.cgs
    assert row["params"] == sum(p.numel() for p in m.parameters())


def test_parse_upload_gennape_pickles(shared_data):
    files = sorted((shared_data / "gennape_format").glob("*.pkl"))
    if not files:
        pytest.skip("no GENNAPE-format pickles in the reference folder")
    for path in files:
        out = studio.parse_upload(path.read_bytes(), path.name)
        assert out.ok_rows >= 1 and out.errors.empty, out.errors
        part = studio.part_from_upload(out, TinyPredictor())
        assert np.isfinite(part.frame["score"]).all() and (part.frame["flops"] > 0).all()


def test_zero_shot_evidence_reads_lofo_and_zoo_entries_and_tolerates_junk():
    lofo = [{"target": "t1", "method": m, "srcc": s, "ndcg@10": 0.9} for m, s in
            (("score", 0.8), ("flops_baseline", 0.7), ("params_baseline", 0.75))]
    lofo.append({"target": "t2", "method": "score", "srcc": 0.1, "ndcg@10": 0.1})  # no baselines: skipped
    ev = studio.zero_shot_evidence({"ensemble_selection": {"lofo_member_metrics": lofo + ["junk", {"x": 1}]}})
    assert list(ev["target"]) == ["t1"]
    assert ev["score SRCC"].iloc[0] == 0.8 and not ev["beats_both"].iloc[0]  # NDCG ties the baselines
    assert studio.zero_shot_evidence(None).empty and studio.zero_shot_evidence({"zoo_check": 3}).empty
    zoo = {"metrics": {"score": {"srcc": 0.6, "ndcg10": 0.9}, "FLOPs": {"srcc": 0.5, "ndcg10": 0.8},
                       "params": {"srcc": "bad", "ndcg10": 0.7}}}
    ev = studio.zero_shot_evidence({"zoo_check": zoo})
    assert ev["check"].iloc[0] == "hand-designed ImageNet networks" and np.isnan(ev["params SRCC"].iloc[0])
    assert not ev["beats_both"].iloc[0]  # a missing baseline value never counts as beaten


def test_zero_shot_evidence_prefers_an_adopted_in_domain_gate():
    old = [{"target": "t1", "method": m, "srcc": 0.5, "ndcg@10": 0.5}
           for m in ("score", "flops_baseline", "params_baseline")]
    gate_lofo = [{"target": "t1", "SRCC gated": 0.8, "SRCC FLOPs": 0.7, "SRCC params": 0.6,
                  "NDCG@10 gated": 0.95, "NDCG@10 FLOPs": 0.9, "NDCG@10 params": 0.9}]
    fam = {"SRCC gated": 0.92, "SRCC FLOPs": 0.7, "SRCC params": 0.7,
           "NDCG@10 gated": 0.99, "NDCG@10 FLOPs": 0.98, "NDCG@10 params": 0.98}
    card = {"ensemble_selection": {"lofo_member_metrics": old},
            "in_domain_gate": {"adopted": True, "lofo": gate_lofo, "in_family_heldout_nb201": fam}}
    ev = studio.zero_shot_evidence(card)
    assert list(ev["check"]) == ["leave one family out", "training family, unseen cells"]
    assert ev["score SRCC"].tolist() == [0.8, 0.92] and ev["beats_both"].all()
    card["in_domain_gate"]["adopted"] = False  # a rejected gate: the ungated numbers, no in-family row
    ev = studio.zero_shot_evidence(card)
    assert list(ev["check"]) == ["leave one family out"] and ev["score SRCC"].iloc[0] == 0.5


def test_finetune_advice_warns_only_when_the_ranking_got_worse():
    worse = pd.DataFrame({"metric": ["srcc", "kendall_tau"], "before": [0.91, 0.75], "after": [0.85, 0.7]})
    msg = studio.finetune_advice(worse, [0.2, 0.5, 3.0])
    assert "from 0.910 to 0.850" in msg and "67% of the fine-tuning architectures lie inside" in msg
    assert "Use the Auto or Cross-validated" in studio.finetune_advice(worse, [0.2, 0.5, 3.0], "paper")
    assert "cross-validated check" in studio.finetune_advice(worse, [0.2, 0.5, 3.0], "cv")
    assert "inside" not in studio.finetune_advice(worse, [2.0, 3.0])  # outside: no in-domain explanation
    assert studio.finetune_advice(worse, None).startswith("Fine-tuning lowered")
    better = worse.assign(after=[0.95, 0.8])
    assert studio.finetune_advice(better, [0.1]) == "" and studio.finetune_advice(pd.DataFrame(), None) == ""


def test_score_scale_note_names_families_of_another_task():
    cifar = {"label_provenance": [{"dataset": "CIFAR-10"}, {"dataset": "CIFAR-10"}]}
    note = studio.score_scale_note(["nb201", "ofa_pn", "ofa_resnet", "zoo", "custom"], cifar)
    assert note.startswith("`score` is on the scale of the checkpoint's labels (CIFAR-10 accuracy, %).")
    assert "ofa_pn, ofa_resnet, zoo are ImageNet networks" in note and "nb201" not in note
    assert studio.score_scale_note(["nb201", "hiaml", "custom"], cifar) is None  # one task (custom: unknown)
    assert studio.score_scale_note(["ofa_pn"], {}) is None  # no label dataset in the card
    assert studio.score_scale_note(["ofa_pn"], None) is None
    imagenet = {"label_provenance": [{"dataset": "ImageNet"}]}
    assert studio.score_scale_note(["ofa_mbv3"], imagenet) is None
    assert "nb101 are CIFAR-10 networks" in studio.score_scale_note(["nb101", "ofa_mbv3"], imagenet)


def _classifier_cg(hw: int, classes: int, name: str = "net"):
    b = CGBuilder(name, input_hwc=(hw, hw, 3))
    return b.output(b.linear(b.mean(b.conv(b.input(), 8, 3)), classes))


def test_score_scale_note_judges_graphs_without_a_family_by_their_inputs_and_outputs():
    """Uploaded CGs / ONNX files have no family: their input size and class count are compared
    with the labels' task (before, 224x224 ImageNet networks uploaded as CGs got no note)."""
    cifar = {"label_provenance": [{"dataset": "CIFAR-10"}]}
    imagenet_like = [_classifier_cg(224, 1000, f"i{i}") for i in range(2)]
    note = studio.score_scale_note(["custom"], cifar, [*imagenet_like, _classifier_cg(32, 10), _classifier_cg(64, 10)])
    assert note.startswith("`score` is on the scale of the checkpoint's labels (CIFAR-10 accuracy, %; CIFAR-10: "
                           "32×32 inputs and 10 classes).")
    assert "2 networks given as graphs take 224×224 inputs and 1,000 outputs" in note
    assert "1 network given as a graph takes 64×64 inputs and 10 outputs" in note
    assert studio.score_scale_note(["custom"], cifar, [_classifier_cg(32, 10)]) is None
    assert studio.score_scale_note(["custom"], cifar, [_classifier_cg(32, 100)]) is not None  # CIFAR-100-sized
    imagenet = {"label_provenance": [{"dataset": "ImageNet"}]}
    assert studio.score_scale_note(["custom"], imagenet, [_classifier_cg(240, 1000)]) is None  # any input size
    assert studio.score_scale_note(["custom"], {"label_provenance": [{"dataset": "MyData"}]}, imagenet_like) is None
    assert studio.cg_io(imagenet_like[0]) == ((224, 224), (1, 1, 1000))
    assert studio.family_task("ofa_pn") == "ImageNet" and studio.family_task("nb201") == "CIFAR-10"
    assert studio.family_task("custom") is None and studio.family_task("zoo") == "ImageNet"
    assert studio.cg_task(imagenet_like[0]) == "ImageNet" and studio.cg_task(_classifier_cg(32, 10)) == "CIFAR-10"
    assert studio.cg_task(_classifier_cg(64, 10)) is None
    assert studio.default_task(["CIFAR-10", "ImageNet"], cifar) == "CIFAR-10"
    assert studio.default_task(["CIFAR-10"], cifar) is None and studio.default_task(["ImageNet", "unknown"], cifar) is None


def test_row_tasks_read_the_label_provenance_first():
    """NB-201 rows labelled on CIFAR-100 are CIFAR-100 networks (100-class head), though the
    family's default network is CIFAR-10's; the zoo's 'ImageNet-1K' provenance is ImageNet."""
    ws = tiny_workspace(12)
    n = len(ws)
    fam = np.where(np.arange(n) < n // 2, "nb201", "zoo")
    prov = np.where(np.arange(n) % 4 == 0, "c100", np.where(fam == "zoo", "in1k", ""))
    ds = np.where(prov == "c100", "nb201_cifar100", np.where(fam == "zoo", "zoo_imagenet", "nb201_cifar10"))
    w = studio.Workspace(ws.frame.assign(family=fam, provenance=prov, dataset=ds),
                         provenances={"c100": {"dataset": "CIFAR-100"}, "in1k": {"dataset": "ImageNet-1K"}})
    tasks = studio.row_tasks(w)
    expected = np.where(prov == "c100", "CIFAR-100", np.where(fam == "zoo", "ImageNet", "CIFAR-10"))
    assert list(tasks) == list(expected)
    note = studio.workspace_scale_note(w, {"label_provenance": [{"dataset": "cifar10"}]})
    assert "nb201_cifar100, zoo are CIFAR-100 networks" not in note
    assert "nb201_cifar100 are CIFAR-100 networks" in note and "zoo are ImageNet networks" in note
    assert studio.task_name("ImageNet-1K") == "ImageNet" and studio.task_name("cifar-100") == "CIFAR-100"
    assert studio.task_name("MyData") is None and studio.task_name(None) is None
    assert studio.dataset_task("ImageNet16-120", "nb201") == "ImageNet16-120" and studio.dataset_task("", "nb201") == "CIFAR-10"
    assert studio.label_tasks({"label_provenance": [{"dataset": "cifar10"}, {"dataset": "MyData"}]}) == [
        "CIFAR-10", "MyData"]


def test_rows_built_with_dataset_options_are_rebuilt_with_them(tmp_path):
    """NB-201's CIFAR-100 / ImageNet16-120 rows are scored as the network of that dataset (another
    head, a 16x16 input): the Architecture, Fine-tune and Search pages rebuild that network, not
    the family's CIFAR-10 default (before: cg_of ignored the options)."""
    from engine.families import get

    specs = get("nb201").sample(3, seed=2)
    prov = Provenance(dataset="ImageNet16-120", metric="validation accuracy", split="validation", source="unit test")
    ds = ArchDataset.from_specs("nb201_in16", "nb201", specs, [30.0, 31.0, 32.0], prov,
                                cg_options={"num_classes": 120, "input_hw": 16})
    part = studio.part_from_dataset(ds, source="benchmark", prefix="in16")
    assert part.meta[studio.CG_OPTIONS] == {"nb201_in16": {"num_classes": 120, "input_hw": 16}}
    base = tiny_workspace(6)
    for ws in (studio.concat_parts([base, part]), studio.extend(base, part)):
        arch = "in16:" + str(ds.frame["id"].iloc[0])
        cg = studio.cg_of(ws, arch)
        assert studio.cg_io(cg) == ((16, 16), (1, 1, 120)) and studio.row_tasks(ws).iloc[-1] == "ImageNet16-120"
        assert cg.flops == ws.row(arch)["flops"]  # the network the row was scored as
        assert studio.cg_options(ws, ws.frame["id"].iloc[0]) == {}  # rows of other datasets: the default network
    path = tmp_path / "ws.npz"
    studio.save_workspace(studio.concat_parts([base, part]), path)
    assert studio.load_workspace(path).meta[studio.CG_OPTIONS] == part.meta[studio.CG_OPTIONS]
    side = studio.sidecar_path(path)
    doc = json.loads(side.read_text())
    doc["meta"][studio.CG_OPTIONS] = {"nb201_in16": [120, 16]}
    side.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="field 'meta.cg_options' must map dataset names to objects"):
        studio.load_workspace(path)


def test_label_percentile_ranks_within_each_label_set():
    f = pd.DataFrame({"dataset": ["a", "a", "a", "b", "b", "c"], "label": [90.0, 92.0, 91.0, 30.0, 45.0, np.nan]})
    pct = studio.label_percentile(f)
    assert list(pct[:5]) == pytest.approx([100 / 3, 100.0, 200 / 3, 50.0, 100.0]) and np.isnan(pct[5])


def test_member_range_note_names_members_outside_0_to_100():
    vals = {"member_cl_fcm_t": [90.0, 133.5, np.nan], "member_cl": [80.0, -2.5, 50.0],
            "member_flops_baseline": [900.0, 1.0, 2.0], "score": [150.0, 1.0, 2.0]}
    note = studio.member_range_note(vals)
    assert note.startswith("Member predictions outside 0–100 (member_cl_fcm_t: 1 of 2, up to 133.5; "
                           "member_cl: 1 of 3, down to -2.5)")
    assert "flops_baseline" not in note and "score:" not in note  # score-type members and non-members are skipped
    assert "cl_fcm_t use Eq. 5" in note
    assert "Eq. 5" not in studio.member_range_note({"kgnn": [120.0, 50.0]})  # only Eq. 5 members are blamed on it
    assert studio.member_range_note({"cl_t": [0.0, 100.0], "graph_stats": [-5.0]}) is None


def test_workspace_scale_note_covers_an_uploaded_file_of_imagenet_graphs():
    demo = studio.demo_files()
    part = studio.part_from_upload(studio.parse_upload(demo["hand_designed_cgs.jsonl"].read_bytes(),
                                                       "hand_designed_cgs.jsonl"))
    cifar = {"label_provenance": [{"dataset": "CIFAR-10"}]}
    assert set(part.frame["family"]) == {"custom"}
    # graphs that fit a known task are named by their dataset, the others described by their inputs and outputs
    assert "hand_designed_cgs are ImageNet networks" in studio.workspace_scale_note(part, cifar)
    onnx = studio.part_from_upload(studio.parse_upload(demo["small_cnn.onnx"].read_bytes(), "small_cnn.onnx"))
    assert studio.workspace_scale_note(onnx, cifar) is None  # a 32x32, 10-class network
    both = studio.concat_parts([part, onnx])
    assert studio.workspace_scale_note(both, cifar, both.frame.index[-1:]) is None  # only the rows asked about
    assert "hand_designed_cgs are ImageNet networks" in studio.workspace_scale_note(both, cifar, both.frame.index[:2])
    tasks = studio.row_tasks(both)
    assert list(tasks) == ["ImageNet"] * 6 + ["CIFAR-10"]  # graph rows: by their inputs and outputs
    assert list(studio.architecture_table(both)["task"]) == list(tasks)


def test_map_sample_keeps_small_families_whole_and_uploads_always():
    groups = np.array(["big"] * 900 + ["mid"] * 300 + ["s1"] * 24 + ["s2"] * 6)
    keep = np.zeros(len(groups), dtype=bool)
    keep[[0, 1, 1229]] = True  # two rows of "big" and one of "s2" are uploads
    idx = studio.map_sample(groups, 200, seed=3, keep=keep)
    counts = pd.Series(groups[idx]).value_counts()
    assert len(idx) == 200 and np.all(np.diff(idx) > 0) and keep[idx].sum() == 3
    assert counts["s1"] == 24 and counts["s2"] == 6  # small families whole
    assert abs(counts["big"] - counts["mid"]) <= 3  # the large ones share the rest equally (plus their uploads)
    assert np.array_equal(idx, studio.map_sample(groups, 200, seed=3, keep=keep))  # seeded
    assert len(studio.map_sample(groups, 2, keep=keep)) == 3  # uploads are kept beyond the budget
    assert len(studio.map_sample(groups, 10_000)) == len(groups)


def test_two_uploads_of_the_same_name_are_two_label_sets():
    from engine.families import get

    specs = get("nb201").sample(8, seed=5)
    pred = TinyPredictor()
    parts = []
    for i, prefix in enumerate(("upload:labels.csv", "upload:labels.csv#1a2b3c")):
        rows = "".join(f"nb201,{s},{60 + j + 10 * i}\n" for j, s in enumerate(specs[4 * i:4 * i + 4]))
        out = studio.parse_upload(("family,spec,label\n" + rows).encode(), "labels.csv")
        parts.append(studio.part_from_upload(out, predictor=pred, prefix=prefix))
    ws = studio.extend(parts[0], parts[1])
    assert sorted(ws.frame["dataset"].unique()) == ["labels.csv", "labels.csv#1a2b3c"]
    assert sorted(studio.ranking_metrics(ws)["dataset"]) == ["labels.csv", "labels.csv#1a2b3c"]


def test_apply_label_edits_sets_changes_and_removes_cleared_typed_labels():
    typed = {"b": 70.0}
    shown = pd.DataFrame({"id": ["a", "b", "c"], "label": [np.nan, 70.0, 90.0]})
    edited = pd.DataFrame({"id": ["a", "b", "c"], "label": [55.5, np.nan, 90.0]})  # type a, clear b, keep c
    assert studio.apply_label_edits(typed, shown, edited) is True
    assert typed == {"a": 55.5}
    assert studio.apply_label_edits(typed, edited, edited) is False  # nothing new
    assert studio.apply_label_edits(typed, edited, edited.assign(label=[55.5, np.nan, 91.0])) and typed["c"] == 91.0


# --- zip / ONNX uploads --------------------------------------------------------------------------

_ONNX_CACHE: dict[int, bytes] = {}


def onnx_bytes(width: int = 8) -> bytes:
    """An ONNX export of a tiny CNN with ``width`` channels (different widths: different graphs)."""
    if width not in _ONNX_CACHE:
        import io

        import torch
        from torch import nn

        torch.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(width, 10)).eval()
        buf = io.BytesIO()
        torch.onnx.export(m, torch.randn(1, 3, 32, 32), buf, dynamo=False)
        _ONNX_CACHE[width] = buf.getvalue()
    return _ONNX_CACHE[width]


def make_zip(entries) -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _labels_by_params(out) -> dict[str, tuple[float, int]]:
    f = out.dataset.frame
    return {i: (lab, int(p)) for i, lab, p in zip(f["id"], f["label"], f["params"])}


def test_parse_upload_zip_same_base_name_in_two_folders_keeps_both_with_their_labels():
    small, wide = onnx_bytes(4), onnx_bytes(16)
    p_small, p_wide = (sum(studio.parse_upload(b, "x.onnx").dataset.frame["params"]) for b in (small, wide))
    entries = [("run1/net.onnx", small), ("run2/net.onnx", wide)]
    out = studio.parse_upload(make_zip([*entries, ("labels.csv", "file,label\nrun1/net.onnx,85\nrun2/net.onnx,93\n")]),
                              "nets.zip")
    assert out.errors.empty, out.errors.to_string()
    assert _labels_by_params(out) == {"run1/net.onnx": (85.0, p_small), "run2/net.onnx": (93.0, p_wide)}
    # a bare base name naming two files is that row's error, listing the paths; the other row still labels its file
    out = studio.parse_upload(make_zip([*entries, ("labels.csv", "file,label\nnet.onnx,85\nrun2/net,93\n")]),
                              "nets.zip")
    assert _labels_by_params(out)["run2/net.onnx"] == (93.0, p_wide)
    assert np.isnan(_labels_by_params(out)["run1/net.onnx"][0])
    err = out.errors.iloc[0]
    assert (err["row"], err["field"], err["file"]) == (2, "file", "labels.csv")
    assert "matches 2 files (run1/net.onnx, run2/net.onnx)" in err["reason"]


def test_parse_upload_zip_finds_its_labels_csv():
    nets = [("a.onnx", onnx_bytes(4)), ("sub/b.onnx", onnx_bytes(8))]
    labels = "file,label\na.onnx,80\nb.onnx,90\n"
    # another CSV sorting before labels.csv (in any folder) is not the labels file
    for where in ("labels.csv", "sub/labels.csv"):
        out = studio.parse_upload(make_zip([("notes.csv", "a,b\n1,2\n"), *nets, (where, labels)]), "nets.zip")
        assert out.errors.empty and sorted(out.dataset.frame["label"]) == [80.0, 90.0], out.errors.to_string()
    # no labels.csv but exactly one CSV: that one; its errors name it
    out = studio.parse_upload(make_zip([*nets, ("my_acc.csv", labels + "c.onnx,70\n")]), "nets.zip")
    assert sorted(out.dataset.frame["label"]) == [80.0, 90.0]
    assert out.errors[["row", "file"]].values.tolist() == [[4, "my_acc.csv"]]
    out = studio.parse_upload(make_zip([*nets, ("my_acc.csv", "x,y\n1,2\n")]), "nets.zip")
    assert out.dataset is None and "my_acc.csv: needs a file column" in out.errors["reason"].iloc[0]
    # several CSVs and none named labels.csv, or two labels.csv: an error listing them
    out = studio.parse_upload(make_zip([*nets, ("x.csv", labels), ("y.csv", labels)]), "nets.zip")
    assert out.dataset is None
    assert "2 CSV files (x.csv, y.csv) and none is named labels.csv" in out.errors["reason"].iloc[0]
    out = studio.parse_upload(make_zip([*nets, ("p/labels.csv", labels), ("q/labels.csv", labels)]), "nets.zip")
    assert out.dataset is None and "(p/labels.csv, q/labels.csv)" in out.errors["reason"].iloc[0]


def test_parse_upload_zip_skips_macos_metadata_and_its_errors_name_the_file():
    nets = [("a.onnx", onnx_bytes(4)), ("b.onnx", onnx_bytes(8))]
    junk = [("__MACOSX/._a.onnx", b"\x00\x05\x16\x07junk"), ("__MACOSX/._labels.csv", b"\x00\x05junk"),
            ("._b.onnx", b"\x00\x05\x16\x07junk"), (".DS_Store", b"\x00junk")]
    out = studio.parse_upload(make_zip([*nets, ("labels.csv", "file,label\na.onnx,80\nb.onnx,90\n"), *junk,
                                        ("broken.onnx", b"not an onnx model")]), "mac.zip")
    assert out.ok_rows == 2 and sorted(out.dataset.frame["label"]) == [80.0, 90.0]
    assert list(out.errors.columns) == ["row", "field", "reason", "file"]
    assert out.errors[["field", "file"]].values.tolist() == [["file", "broken.onnx"]]
    assert "could not import the ONNX model" in out.errors["reason"].iloc[0]
    # a problem with the uploaded file itself has no inner file
    assert studio.parse_upload(b"", "empty.csv").errors["file"].tolist() == [""]


def test_parse_upload_zip_labels_by_id_column_and_names_without_suffix():
    nets = [("a.onnx", onnx_bytes(4)), ("b.onnx", onnx_bytes(8))]
    for labels in ("id,label\na.onnx,80\nb.onnx,90\n",  # as `python -m engine predict --output` names them
                   "file,label\na,80\nb,90\n", "id,label\na,80\nb.onnx,90\n"):
        out = studio.parse_upload(make_zip([*nets, ("labels.csv", labels)]), "nets.zip")
        assert out.errors.empty, (labels, out.errors.to_string())
        assert _labels_by_params(out)["a.onnx"][0] == 80.0 and _labels_by_params(out)["b.onnx"][0] == 90.0
    # a name without the suffix that matches no file says which name it looked for
    out = studio.parse_upload(make_zip([*nets, ("labels.csv", "id,label\nc,70\n")]), "nets.zip")
    assert out.errors[["row", "field", "file"]].values.tolist() == [[2, "id", "labels.csv"]]
    assert "no uploaded ONNX file named 'c'" in out.errors["reason"].iloc[0]


def test_loose_onnx_files_with_a_labels_csv_read_as_their_zip():
    from engine.data.uploads import onnx_batch, zip_files

    labels = b"file,label\na.onnx,80\nb,90\n"
    batch = [("a.onnx", onnx_bytes(4)), ("table.csv", b"family,spec,label\n"), ("b.onnx", onnx_bytes(8)),
             ("labels.csv", labels)]
    assert onnx_batch(batch) == [0, 2, 3]  # the architecture table is read on its own
    out = studio.parse_upload(zip_files([batch[i] for i in onnx_batch(batch)]), "labels.zip")
    assert out.errors.empty and _labels_by_params(out)["b.onnx"][0] == 90.0
    assert zip_files(batch[:1]) == zip_files(batch[:1])  # the same bytes each time (the app skips files it read)
    assert onnx_batch(batch[1:2] + batch[3:]) == [] and onnx_batch(batch[:1]) == []
    assert onnx_batch([*batch[:1], ("acc.csv", b"id,val_acc\na.onnx,0.8\n")]) == [0, 1]
    # a labels CSV on its own says where ONNX labels go
    reason = studio.parse_upload(labels, "labels.csv").errors["reason"].iloc[0]
    assert "'file' and 'label' columns, uploaded together with the .onnx files (or zipped with them)" in reason
