"""User uploads: every valid row loads, every bad row is reported (row, field, reason)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data import RowError, UploadError, parse_onnx_folder, parse_table
from engine.data import uploads as up
from engine.families import get


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENNAPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def specs():
    return get("hiaml").sample(4, 2)


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_csv_mix_of_good_and_bad_rows(specs):
    s = specs
    lines = [
        "family,spec,accuracy,flops,note",                                   # row 1 (header)
        f"hiaml,{_csv_quote(','.join(s[0]))},93.1,1e6,a",                   # 2 good (comma form)
        f"hiaml,{_csv_quote(json.dumps(s[1]))},92.5,,b",                    # 3 good (JSON form)
        f"nosuch,{_csv_quote(','.join(s[2]))},91,,c",                       # 4 unknown family
        "hiaml,\"hiaml_zz,hiaml_z,hiaml_z,hiaml_z\",91,,d",                 # 5 invalid spec
        f"hiaml,{_csv_quote(','.join(s[3]))},abc,,e",                       # 6 non-numeric label
        f"hiaml,{_csv_quote(','.join(s[3]))},120,,f",                       # 7 out of range
        f"HiAML,{_csv_quote(','.join(s[0]))},90,,dup",                      # 8 duplicate of row 2
        f"hiaml,{_csv_quote(','.join(s[3]))},,,unlabelled",                 # 9 good, unlabelled
        "hiaml,a,b",                                                        # 10 wrong field count
        f"hiaml,{_csv_quote(','.join(s[2]))},89.5,zz,g",                    # 11 non-numeric flops
        "",                                                                 # blank line, ignored
    ]
    res = parse_table("\n".join(lines).encode(), "mine.csv")
    got = [(e.row, e.field) for e in res.errors]
    assert got == [(4, "family"), (5, "spec"), (6, "accuracy"), (7, "accuracy"), (8, "spec"), (10, ""),
                   (11, "flops")]
    reasons = {e.row: e.reason for e in res.errors}
    assert "unknown family 'nosuch'" in reasons[4]
    assert "hiaml_zz" in reasons[5] and "not a number" in reasons[6] and "outside 0-100" in reasons[7]
    assert "duplicate" in reasons[8] and "row 2" in reasons[8] and "header has 5" in reasons[10]
    assert all(isinstance(e, RowError) and e.reason for e in res.errors)
    assert "row 4, field 'family'" in str(res.errors[0])
    ds = res.dataset
    assert ds.frame["id"].tolist() == ["2", "3", "9"]
    assert ds.frame["note"].tolist() == ["a", "b", "unlabelled"]
    assert ds.frame["label"].iloc[0] == pytest.approx(93.1) and np.isnan(ds.frame["label"].iloc[2])
    assert ds.frame["src_flops"].iloc[0] == 1e6
    fam = get("hiaml")
    assert ds.frame["flops"].iloc[1] == fam.to_cg(s[1]).flops  # FLOPs from our CGs
    assert ds.provenance.source == "user upload mine.csv" and "accuracy" in ds.provenance.label()
    assert res.rows_read == 10 and "loaded 3 of 10 rows" in res.summary() and "header is row 1" in res.summary()
    assert any("empty label" in w for w in res.warnings)
    assert list(res.error_frame().columns) == ["row", "field", "reason", "file"]


def test_jsonl_with_cg_objects_strings_and_duplicates(specs):
    fam = get("hiaml")
    cg0, cg1 = fam.to_cg(specs[0]), fam.to_cg(specs[1])
    lines = [
        json.dumps({"cg": cg0.to_dict(), "val_acc": 0.91, "id": "a"}),
        json.dumps({"family": "hiaml", "spec": specs[2], "val_acc": 0.80}),
        json.dumps({"cg": cg1.to_json(), "val_acc": 0.70}),
        json.dumps({"cg": cg0.to_dict(), "val_acc": 0.50}),          # same graph as line 1
        "{not json",
        json.dumps({"cg": {"format_version": 1, "nodes": [], "edges": []}, "val_acc": 0.5}),
        json.dumps([1, 2]),
    ]
    res = parse_table("\n".join(lines).encode(), "graphs.jsonl")
    assert [(e.row, e.field) for e in res.errors] == [(4, "cg"), (5, ""), (6, "cg"), (7, "")]
    assert "same graph as row 1" in res.errors[0].reason
    ds = res.dataset
    assert len(ds) == 3 and ds.frame["family"].tolist() == ["custom", "hiaml", "custom"]
    assert np.allclose(ds.labels, [91.0, 80.0, 70.0])  # fractions -> percent
    assert any("fractions" in w for w in res.warnings)
    assert ds.provenance.metric == "validation accuracy" and "multiplied by 100" in ds.provenance.notes
    assert ds.cgs[0].to_json() == cg0.to_json() and ds.cgs[1].to_json() == fam.to_cg(specs[2]).to_json()
    assert ds.frame["flops"].tolist() == [cg0.flops, fam.to_cg(specs[2]).flops, cg1.flops]


def test_label_scale_rules(specs):
    body = "family,spec,test_acc\n" + "\n".join(
        f"hiaml,{_csv_quote(','.join(s))},{v}" for s, v in zip(specs, ["0.9", "95", "0.5", "93.5%"]))
    res = parse_table(body.encode(), "t.csv")
    assert np.allclose(res.dataset.labels, [0.9, 95, 0.5, 93.5])  # mixed -> percent, with a warning
    assert any("mixed" in w for w in res.warnings)
    assert res.dataset.provenance.metric == "test accuracy" and res.dataset.provenance.split == "test"
    res = parse_table(body.encode(), "t.csv", label_scale="fraction")
    assert [(e.row, e.field) for e in res.errors] == [(3, "test_acc"), (5, "test_acc")]
    assert np.allclose(res.dataset.labels, [90.0, 50.0])
    neg = "family,spec,label\nhiaml," + _csv_quote(",".join(specs[0])) + ",-3\n"
    res = parse_table(neg.encode(), "n.csv")
    assert res.errors[0].field == "label" and "negative" in res.errors[0].reason and len(res.dataset) == 0


def test_provenance_columns_and_default_family(specs):
    body = "spec,label,dataset,epochs\n" + "\n".join(
        f"{_csv_quote(','.join(s))},{90 + i},CIFAR-10,200" for i, s in enumerate(specs[:2]))
    res = parse_table(body.encode(), "p.csv", family="hiaml")
    assert res.ok and len(res.dataset) == 2
    assert res.dataset.provenance.dataset == "CIFAR-10" and res.dataset.provenance.epochs == 200
    assert res.dataset.provenance.label().startswith("CIFAR-10 accuracy (%), epoch 200")


def test_whole_file_errors(monkeypatch, specs):
    with pytest.raises(UploadError, match="spec"):
        parse_table(b"family,label\nhiaml,90\n", "x.csv")
    with pytest.raises(UploadError, match="family"):
        parse_table(b"spec,label\nx,90\n", "x.csv")
    with pytest.raises(UploadError, match="UTF-8"):
        parse_table(b"\xff\xfe\x00bad", "x.csv")
    with pytest.raises(UploadError, match="empty"):
        parse_table(b"", "x.csv")
    with pytest.raises(UploadError, match="label column 'score' not found"):
        parse_table(b"family,spec,label\nhiaml,x,1\n", "x.csv", label_column="score")
    monkeypatch.setattr(up, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(UploadError, match="upload limit"):
        parse_table(b"family,spec,label\nhiaml,x,1\n", "x.csv")


def test_row_limit_is_reported(monkeypatch, specs):
    monkeypatch.setattr(up, "MAX_ROWS", 2)
    body = "family,spec,label\n" + "\n".join(f"hiaml,{_csv_quote(','.join(s))},90" for s in specs)
    res = parse_table(body.encode(), "x.csv")
    assert len(res.dataset) == 2 and res.errors[-1].row == 4 and "row limit" in res.errors[-1].reason


def test_user_pickles_are_never_loaded():
    import pickle

    res_err = None
    try:
        parse_table(pickle.dumps({"a": 1}), "evil.pkl")
    except UploadError as exc:
        res_err = exc
    assert res_err is not None  # a pickle is not a table: refused, not unpickled


def _real_onnx_bytes():
    """An ONNX export of a tiny network."""
    import io

    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 10))
    buf = io.BytesIO()
    torch.onnx.export(net, torch.randn(1, 3, 32, 32), buf, dynamo=False)
    return buf.getvalue()


def test_onnx_folder_reports_bad_files_and_labels():
    labels = b"file,accuracy\ngood.onnx,91.5\nmissing.onnx,80\nbroken.onnx,70\n"
    files = {"broken.onnx": b"not an onnx model", "readme.txt": b"hello"}
    res = parse_onnx_folder(files, labels)
    by = {(e.file, e.field): e for e in res.errors}
    assert ("broken.onnx", "file") in by and by[("broken.onnx", "file")].row == 4
    assert ("readme.txt", "file") in by and "not an .onnx" in by[("readme.txt", "file")].reason
    missing = [e for e in res.errors if "no uploaded ONNX file named 'missing.onnx'" in e.reason]
    assert missing and missing[0].row == 3
    unknown_good = [e for e in res.errors if "'good.onnx'" in e.reason]
    assert unknown_good and unknown_good[0].row == 2
    assert len(res.dataset) == 0
    with pytest.raises(UploadError, match="file column"):
        parse_onnx_folder({}, b"x,label\na,1\n")


def test_onnx_folder_real_model():
    raw = _real_onnx_bytes()
    events = []
    res = parse_onnx_folder({"a.onnx": raw, "b.onnx": raw, "c.onnx": raw[:100]},
                            b"filename,label\na.onnx,0.9\n", callback=lambda *e: events.append(e[:3]))
    assert events == [("import ONNX", i, 3) for i in range(4)]
    assert len(res.dataset) == 1 and res.dataset.frame["id"].tolist() == ["a.onnx"]
    assert res.dataset.labels[0] == pytest.approx(90.0)
    fields = {(e.file, e.field) for e in res.errors}
    assert ("b.onnx", "file") in fields and ("c.onnx", "file") in fields  # duplicate graph, unreadable
    assert res.dataset.cgs[0].flops > 0 and res.dataset.frame["flops"].iloc[0] == res.dataset.cgs[0].flops
    # a conv with a bias and no BatchNorm: the upload says BN may have been folded by the export
    assert any("1 of 1 ONNX model(s)" in w and "do_constant_folding=False" in w for w in res.warnings)



def test_onnx_folder_matches_labels_by_path_and_keeps_same_named_files_apart():
    raw = _real_onnx_bytes()
    # the same graph twice: the second is reported as a duplicate (never given the first one's label)
    files = {"nets/run1/net.onnx": raw, "nets/run2/net.onnx": raw, "nets/solo.onnx": b"broken"}
    labels = (b"path,label\nrun1/net.onnx,85\nnets/run2/net.onnx,93\nnet.onnx,70\nsolo,60\n"
              b"run1/net,71\nrun3/net.onnx,50\n")
    res = parse_onnx_folder(files, labels, labels_filename="nets/labels.csv")
    # ids: the base name, or the path within the upload where base names repeat
    assert res.dataset.frame["id"].tolist() == ["nets/run1/net.onnx"] and res.dataset.labels[0] == pytest.approx(85)
    got = {(e.row, e.field, e.file): e.reason for e in res.errors}
    assert "duplicate architecture: same graph as 'nets/run1/net.onnx'" in got[(3, "file", "nets/run2/net.onnx")]
    assert got[(4, "path", "nets/labels.csv")].startswith(
        "'net.onnx' matches 2 files (nets/run1/net.onnx, nets/run2/net.onnx)")
    assert "could not import" in got[(5, "file", "solo.onnx")]  # 'solo' named solo.onnx
    assert got[(6, "path", "nets/labels.csv")] == "'nets/run1/net.onnx' already labelled in row 2"
    assert got[(7, "path", "nets/labels.csv")] == "no uploaded ONNX file named 'run3/net.onnx'"
    assert up.is_onnx_labels_table(b"file,label\na.onnx,1\n", "l.csv")
    assert up.is_onnx_labels_table(b"\xef\xbb\xbfID,Accuracy\na.onnx,1\n", "l.csv")
    assert not up.is_onnx_labels_table(b"file,spec,label\n", "l.csv")
    assert not up.is_onnx_labels_table(b"file,notes\n", "l.csv") and not up.is_onnx_labels_table(b"\xff", "l.csv")
    with pytest.raises(UploadError, match=r"uploaded together with the \.onnx files \(or zipped with them\)"):
        parse_table(b"file,label\na.onnx,90\n", "labels.csv")
    with pytest.raises(UploadError, match=r"columns are \['a', 'b'\]$"):
        parse_table(b"a,b\n1,2\n", "other.csv")


def test_onnx_folder_keeps_the_labelled_copy_of_a_repeated_graph():
    """An unlabelled copy of a network in a folder that sorts first was kept and the labelled file
    rejected as its duplicate: the label was lost."""
    raw = _real_onnx_bytes()
    res = parse_onnx_folder({"0old/a.onnx": raw, "a.onnx": raw}, b"file,label\na.onnx,91\n")
    assert res.dataset.frame["id"].tolist() == ["a.onnx"] and res.dataset.labels.tolist() == [91.0]
    (err,) = res.errors
    assert err.file == "0old/a.onnx" and "same graph as 'a.onnx' (the labelled file is kept)" in err.reason
    assert not any("no label" in w for w in res.warnings)


def test_odd_json_values_become_row_errors():
    lines = [
        json.dumps({"family": "nb201", "spec": {"not": "an arch"}, "label": 90}),
        json.dumps({"family": "nb201", "spec": [1, 2], "label": 90}),
        json.dumps({"cg": {"format_version": 1, "nodes": "x", "edges": 3}, "label": 90}),
        json.dumps({"cg": 12, "label": 90}),
        json.dumps({"family": "nb201", "spec": "012340", "label": True}),
        json.dumps({"family": "nb201", "spec": "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|"
                                        "none~2|", "label": 88}),
        json.dumps({"family": "nb201", "spec": "012340", "label": 87}),  # same arch, other encoding
    ]
    res = parse_table("\n".join(lines).encode(), "odd.jsonl")
    assert [(e.row, e.field) for e in res.errors] == [(1, "spec"), (2, "spec"), (3, "cg"), (4, "cg"), (5, "label"),
                                                      (7, "spec")]
    assert "duplicate" in res.errors[-1].reason and "row 6" in res.errors[-1].reason
    assert len(res.dataset) == 1 and res.dataset.labels[0] == 88.0


@pytest.mark.parametrize("name, needle", [("model.pt", "torch.onnx.export"), ("w.safetensors", "torch.onnx.export"),
                                          ("net.h5", "tf2onnx"), ("notes.txt", None)])
def test_model_files_of_other_frameworks_say_how_to_convert(name, needle):
    from engine import studio

    reason = studio.parse_upload(b"\x80\x02not a format we read", name).errors["reason"].iloc[0]
    assert reason.startswith(f"unsupported file type '.{name.rsplit('.', 1)[1]}'")
    assert (needle in reason) if needle else reason.endswith(".zip")  # no hint for unrelated files


def test_parse_id_labels_reports_every_bad_row():
    from engine.data.uploads import parse_id_labels

    known = {"a", "b", "c", "d"}
    raw = b"ID,Accuracy\na,91.5\nzz,50\nb,140\nc,\nd,x\na,80\nb,1,2\n"
    got = parse_id_labels(raw, "l.csv", known)
    assert got.labels == {"a": 91.5}
    assert [(e.row, e.field) for e in got.errors] == [(3, "id"), (4, "accuracy"), (5, "accuracy"), (6, "accuracy"),
                                                      (7, "id"), (8, "")]
    assert [e.file for e in got.errors] == ["l.csv"] * 6
    assert "140 is outside 0-100" in got.errors[1].reason and "already labelled in row 2" in got.errors[4].reason
    assert got.summary().startswith("1 of 7 label row(s) read")
    frac = parse_id_labels("id,val_acc\na,0.91\nb,0.5\n", "f.csv", known)
    assert frac.labels == pytest.approx({"a": 91.0, "b": 50.0}) and "fractions" in frac.warnings[0]
    assert parse_id_labels("id,label\na,0.5\n", "p.csv", known, label_scale="percent").labels == {"a": 0.5}
    with pytest.raises(UploadError, match="needs an 'id' column"):
        parse_id_labels("arch,label\na,1\n", "x.csv", known)
    with pytest.raises(UploadError, match="no label column"):
        parse_id_labels("id,score\na,1\n", "x.csv", known)
    with pytest.raises(UploadError, match="empty"):
        parse_id_labels(b"", "x.csv", known)


def test_default_finetune_k_keeps_a_third_back():
    from engine.studio import default_finetune_k

    assert [default_finetune_k(n) for n in (2, 3, 5, 6, 10, 12, 60, 75, 150)] == [2, 2, 2, 3, 6, 8, 40, 50, 50]
    assert default_finetune_k(1000, k=200) == 100


@pytest.mark.parametrize("raw, needle", [
    (b'{"nodes": [{"id": 0, "op": "input"}]}', "missing required field(s) 'format_version', 'edges'"),
    (b"42", "expected a JSON object (a CG, as the Architecture page downloads it, or a GENNAPE graph) or an array "
            "of rows, got a JSON int"),
    (b'{"hello": "world"}', "a dict without a GENNAPE graph"),
])
def test_json_upload_errors_say_what_the_file_lacks(raw, needle):
    from engine import studio

    out = studio.parse_upload(raw, "mine.json")
    reasons = " ".join(out.errors["reason"])
    assert out.dataset is None and needle in reasons
    assert "/tmp" not in reasons and "pickle" not in reasons  # no temporary path, no unpickling talk


def test_uploaded_spec_is_kept_as_given_so_it_rebuilds_the_scored_network():
    """An NB-101 cell whose canonical numbering builds another network: the upload stores the spec
    as given (it stored the canonical form, so the app rebuilt, fine-tuned and exported another network)."""

    from test_data import _renumbered_nb101_cell

    from engine import studio

    spec, _ = _renumbered_nb101_cell()
    up = studio.parse_upload(json.dumps({"id": "a", "family": "nb101", "spec": spec}).encode(), "one.jsonl")
    ds = up.dataset
    ds.build_cgs(cache=False)
    assert studio.build_cg("nb101", ds.frame["spec"].iloc[0]).flops == ds.frame["flops"].iloc[0]
    assert ds.frame["flops"].iloc[0] == get("nb101").to_cg(spec).flops


def test_id_labels_accept_an_uploaded_networks_file_name():
    """The Fine-tune page's labels CSV: `engine predict` writes an ONNX network's file name as its id,
    the workspace id is `upload:<file>:<name>`; a unique file name (with or without .onnx) works."""
    import pandas as pd

    from engine import studio
    from engine.data.uploads import parse_id_labels

    frame = pd.DataFrame({"id": ["upload:z:a.onnx", "upload:z:b.onnx", "upload:y:b.onnx", "nb201:1"],
                          "name": ["a.onnx", "b.onnx", "b.onnx", "nb201:1"]})
    aliases = studio.id_aliases(frame)
    got = parse_id_labels("id,label\na.onnx,91\nnb201:1,90\nb,80\nupload:y:b.onnx,85\na,92\n", "l.csv", aliases)
    assert got.labels == {"upload:z:a.onnx": 91.0, "nb201:1": 90.0, "upload:y:b.onnx": 85.0}
    reasons = {e.row: e.reason for e in got.errors}
    assert "no architecture 'b'" in reasons[4] and "file name" in reasons[4]  # two networks are called b.onnx
    assert "already labelled in row 2" in reasons[6]  # 'a' is a.onnx again
