"""``python -m engine pretrain / finetune / predict`` end to end on tiny synthetic data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from engine.__main__ import main
from engine.model.config import MEMBERS
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _write_labels(path, n, seed):
    cgs, acc = synthetic_dataset(n, seed=seed)
    with open(path, "w") as fh:
        for i, (cg, a) in enumerate(zip(cgs, acc)):
            fh.write(json.dumps({"id": f"a{i}", "cg": cg.to_dict(), "label": float(a)}) + "\n")
    return cgs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("cli")
    _write_labels(d / "train.jsonl", 20, 0)
    rc = main(["pretrain", "--labels", str(d / "train.jsonl"), "--preset", "tiny", "--set", "kgnn.epochs=1",
               "--output", str(d / "ckpt"), "--quiet"])
    assert rc == 0
    return d / "ckpt"


def test_pretrain_writes_checkpoint(checkpoint):
    names = sorted(p.name for p in checkpoint.iterdir())
    assert names == ["config.json", "domain.safetensors", "model_card.json", "state.json", "weights.safetensors"]
    card = json.loads((checkpoint / "model_card.json").read_text())
    assert card["training_command"].startswith("python -m engine pretrain")
    assert card["n_graphs"] == 20 and card["kgnn_epochs"] == 1
    assert json.loads((checkpoint / "config.json").read_text())["kgnn"]["epochs"] == 1


def test_predict_csv_columns(checkpoint, tmp_path, capsys):
    cgs, _ = synthetic_dataset(5, seed=3)
    from engine.families import get

    fam = get("nb201")
    spec = fam.sample(1, 0)[0]
    lines = [json.dumps({"id": f"x{i}", "cg": cg.to_dict()}) for i, cg in enumerate(cgs)]
    lines.append(json.dumps({"id": "nb", "family": "nb201", "spec": spec}))
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "preds.csv"
    rc = main(["predict", "--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--checkpoint",
               str(checkpoint), "--quiet"])
    assert rc == 0
    df = pd.read_csv(out)
    c = json.loads((checkpoint / "state.json").read_text())["n_clusters"]
    assert list(df.columns) == (["id", "score", "flops", "params", "cluster"] + [f"membership_{j}" for j in range(c)]
                                + list(MEMBERS))
    assert df["id"].tolist() == ["x0", "x1", "x2", "x3", "x4", "nb"]
    assert df["flops"].tolist()[:5] == [cg.flops for cg in cgs]
    assert df["flops"].iloc[5] == fam.to_cg(spec).flops


@pytest.mark.parametrize("content, needle", [
    ('{"id": 1, "cg": {"format_version": 1}}\n', "line 1"),
    ('{"id": 1, "family": "nb201", "spec": "|bad|"}\nnot json\n', "line 1"),
    ('\n\n{"id": "a"}\n', "line 3"),
    ('{"id": "a", "family": "nope", "spec": "x"}\n', "family"),
    ("", "empty"),
])
def test_predict_bad_jsonl_exits_2(checkpoint, tmp_path, capsys, content, needle):
    (tmp_path / "bad.jsonl").write_text(content)
    rc = main(["predict", "--input", str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "o.csv"),
               "--checkpoint", str(checkpoint), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err and "bad.jsonl" in err
    assert not (tmp_path / "o.csv").exists()


def test_predict_missing_checkpoint_and_input(tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text("")
    assert main(["predict", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_finetune_cli(checkpoint, tmp_path):
    _write_labels(tmp_path / "target.jsonl", 10, 5)
    rc = main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / "target.jsonl"), "--k", "6",
               "--output", str(tmp_path / "ft"), "--quiet"])
    assert rc == 0
    card = json.loads((tmp_path / "ft" / "model_card.json").read_text())
    assert card["finetune"]["k"] == 6 and card["finetune"]["labels_file"].endswith("target.jsonl")
    assert "finetune" not in json.loads((checkpoint / "model_card.json").read_text())
    assert card["finetune"]["selection"] in ("paper", "cv") and card["finetune"]["selection_reason"].startswith("auto: ")
    rc = main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / "target.jsonl"), "--k", "8",
               "--selection", "cv", "--output", str(tmp_path / "ft_cv"), "--quiet"])
    assert rc == 0
    card = json.loads((tmp_path / "ft_cv" / "model_card.json").read_text())["finetune"]
    assert card["selection"] == "cv" and card["folds"] == 4 and isinstance(card["kept_pretrained"], list)
    assert json.loads((tmp_path / "ft_cv" / "config.json").read_text())["finetune"]["selection"] == "cv"


def test_finetune_cli_refuses_labels_of_two_families_or_two_datasets(checkpoint, tmp_path, capsys):
    from engine.families import get

    rows = [f"nb201,{s},{80 + i}" for i, s in enumerate(get("nb201").sample(3, seed=1))]
    records = [{"id": f"a{i}", "family": f, "spec": s, "label": 70.0 + i}
               for i, (f, s) in enumerate([("nb201", s) for s in get("nb201").sample(2, seed=1)]
                                          + [("nb101", s) for s in get("nb101").sample(2, seed=1)])]
    (tmp_path / "fam.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (tmp_path / "ds.csv").write_text("family,spec,label,dataset\n" + "\n".join(
        f"{r},{'cifar10' if i < 2 else 'imagenet16-120'}" for i, r in enumerate(rows)) + "\n")
    for name, needle in (("fam.jsonl", "labels of 2 families (nb101, nb201); fine-tune on one family at a time"),
                         ("ds.csv", "labels of 2 datasets (cifar10, imagenet16-120); fine-tune on one dataset")):
        rc = main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / name),
                   "--output", str(tmp_path / "ft"), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and not (tmp_path / "ft").exists()


def test_an_id_label_table_without_networks_is_explained(tmp_path):
    from engine.train.data import load_labels_file

    (tmp_path / "ids.csv").write_text("id,label\nnb201:1,80\nnb201:2,85\n")
    with pytest.raises(ValueError, match="no .onnx files to go with the labels .*the app's format; here give family"):
        load_labels_file(tmp_path / "ids.csv")
    (tmp_path / "files.csv").write_text("file,label\nnet1.onnx,90\nnet2.onnx,80\n")  # named, just missing
    with pytest.raises(ValueError, match="no .onnx files to go with the labels") as err:
        load_labels_file(tmp_path / "files.csv")
    assert "app's format" not in str(err.value)


def test_kept_base_message_says_a_tie_is_a_tie():
    from engine.studio import kept_base_message

    tie = {"kept_base_model": True, "kendall_tau_cv_ensemble": {"base": 0.8666666666666668,
                                                                "finetuned": 0.8666666666666668}}
    assert "only as well as its own score (Kendall τ 0.867 both; a tie keeps the base model)" in kept_base_message(tie)
    assert "better" not in kept_base_message(tie)


def test_finetune_cli_prints_the_label_files_warnings(checkpoint, tmp_path, capsys):
    """Labels mixing fractions and percent, and a row without a label, are said on stderr."""
    cgs, acc = synthetic_dataset(9, seed=3)
    labels = [float(a) for a in acc[:8]] + [None]
    labels[0] = 0.5  # a fraction among percentages
    with open(tmp_path / "mixed.jsonl", "w") as fh:
        for i, (cg, a) in enumerate(zip(cgs, labels)):
            fh.write(json.dumps({"id": f"m{i}", "cg": cg.to_dict(), "label": a}) + "\n")
    rc = main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / "mixed.jsonl"), "--k", "6",
               "--selection", "paper", "--output", str(tmp_path / "ft"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "warning: " in err and "mixed.jsonl: 1 label(s) <= 1 were read as percent" in err
    assert "1 row(s) have an empty label" in err


def test_predict_one_cg_json_file(checkpoint, tmp_path, capsys):
    """A CG written by `engine cg --output` (pretty-printed or not) is an input of its own."""
    cgs, _ = synthetic_dataset(2, seed=4)
    for name, indent in (("net.json", 1), ("flat.json", None)):
        cgs[0].to_json(tmp_path / name, indent=indent)
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--input", str(tmp_path / name), "--output", str(out),
                     "--checkpoint", str(checkpoint), "--quiet"]) == 0
        rows = out.read_text().splitlines()
        assert len(rows) == 2 and rows[1].startswith(f"{name},")
    # a header-only table names its path once
    (tmp_path / "hdr.csv").write_text("id,family,spec\n")
    assert main(["predict", "--input", str(tmp_path / "hdr.csv"), "--output", str(tmp_path / "o.csv"),
                 "--checkpoint", str(checkpoint)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {tmp_path / 'hdr.csv'}: no data rows")


def test_predict_scores_every_id_even_of_a_repeated_architecture(checkpoint, tmp_path, capsys):
    spec = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    (tmp_path / "dup.csv").write_text(f"id,family,spec\na,nb201,{spec}\nb,nb201,{spec}\n")
    assert main(["predict", "--input", str(tmp_path / "dup.csv"), "--output", str(tmp_path / "o.csv"),
                 "--checkpoint", str(checkpoint), "--quiet"]) == 0
    assert list(pd.read_csv(tmp_path / "o.csv")["id"]) == ["a", "b"]
    rec = {"family": "nb201", "spec": spec}
    (tmp_path / "ids.jsonl").write_text("\n".join(json.dumps({**rec, "id": v}) for v in ("x", 7, None)) + "\n")
    assert main(["predict", "--input", str(tmp_path / "ids.jsonl"), "--output", str(tmp_path / "o.csv"),
                 "--checkpoint", str(checkpoint), "--quiet"]) == 0
    assert list(pd.read_csv(tmp_path / "o.csv", dtype=str)["id"]) == ["x", "7", "3"]  # null: the line number
    (tmp_path / "bad_id.jsonl").write_text(json.dumps({**rec, "id": ["x"]}) + "\n")
    assert main(["predict", "--input", str(tmp_path / "bad_id.jsonl"), "--output", str(tmp_path / "o.csv"),
                 "--checkpoint", str(checkpoint), "--quiet"]) == 2
    assert "line 1: field 'id' must be a string or a number, got [\"x\"]" in capsys.readouterr().err


def test_finetune_names_the_labels_path_and_warns_on_equal_labels(checkpoint, tmp_path, capsys):
    (tmp_path / "head.csv").write_text("family,spec,label\n")
    assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / "head.csv"),
                 "--output", str(tmp_path / "ft")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'head.csv'}: no data rows"
    cgs, _ = synthetic_dataset(6, seed=8)
    with open(tmp_path / "same.jsonl", "w") as fh:
        for i, cg in enumerate(cgs):
            fh.write(json.dumps({"id": f"s{i}", "cg": cg.to_dict(), "label": 80.0}) + "\n")
    assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(tmp_path / "same.jsonl"), "--k", "4",
                 "--selection", "paper", "--output", str(tmp_path / "ft"), "--quiet"]) == 0
    assert "all 6 labels are equal (80): they carry no ranking information" in capsys.readouterr().err


def test_a_checkpoint_config_error_names_the_file(checkpoint, tmp_path, capsys):
    import shutil

    bad = tmp_path / "ck"
    shutil.copytree(checkpoint, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["encoder"]["hidden"] = -3
    (bad / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "a", "family": "nb201", "spec": "303121"}) + "\n")
    assert main(["predict", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "o.csv"),
                 "--checkpoint", str(bad)]) == 2
    assert f"{bad / 'config.json'}: config.encoder.hidden: expected a number >= 1, got -3" in capsys.readouterr().err


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [(["predict", "--input", "nope.jsonl", "--output", str(tmp_path / "adir")], "is a folder; give a file name"),
             (["predict", "--input", "nope.jsonl", "--output", str(tmp_path / "afile" / "p.csv")], "is a file, not a folder"),
             (["finetune", "--labels", "nope.csv", "--output", str(tmp_path / "afile")], "exists and is not a folder"),
             (["pretrain", "--families", "nb201", "--output", str(tmp_path / "afile")], "exists and is not a folder")]
    for argv, needle in cases:
        assert main(argv) == 2
        assert needle in capsys.readouterr().err  # checked first: the missing input is not even read


def test_predict_onnx_folder(checkpoint, tmp_path, capsys):
    import warnings

    from torch import nn

    folder = tmp_path / "models"
    folder.mkdir()
    for i, c in enumerate((4, 8)):
        m = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(c, 10)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, torch.randn(1, 3, 16, 16), str(folder / f"net{i}.onnx"), dynamo=False)
    out = tmp_path / "p.csv"
    assert main(["predict", "--input", str(folder), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--quiet"]) == 0
    df = pd.read_csv(out)
    assert df["id"].tolist() == ["net0.onnx", "net1.onnx"]
    assert df["flops"].iloc[1] > df["flops"].iloc[0]
    (folder / "broken.onnx").write_bytes(b"garbage")
    out.unlink()
    assert main(["predict", "--input", str(folder), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--quiet"]) == 2
    assert not out.exists()
    assert main(["predict", "--input", str(folder), "--output", str(out), "--checkpoint", str(checkpoint),
                 "--skip-invalid"]) == 0
    assert pd.read_csv(out)["id"].tolist() == ["net0.onnx", "net1.onnx"]
    err = capsys.readouterr().err
    assert "import ONNX" in err and "3/3" in err and "skipped 1 invalid input(s)" in err and "broken.onnx" in err


def test_finetune_on_onnx_networks_and_their_labels_csv(checkpoint, tmp_path, capsys):
    """`finetune --labels` takes ONNX networks as the app's Data page does: the labels CSV beside its
    .onnx files (file or id column, as `predict` writes it), their folder, or a zip of them."""
    import warnings
    import zipfile

    from torch import nn

    folder = tmp_path / "nets"
    folder.mkdir()
    for i, c in enumerate((4, 6, 8, 12, 16)):
        m = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(c, 10)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(m, torch.randn(1, 3, 16, 16), str(folder / f"net{i}.onnx"), dynamo=False)
    (folder / "labels.csv").write_text("id,label\n" + "".join(f"net{i},{80 + 2 * i}\n" for i in range(5)))
    with zipfile.ZipFile(tmp_path / "nets.zip", "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    # networks the labels do not name (a copy in a hidden folder, a broken file) are not read
    (folder / ".venv").mkdir()
    (folder / ".venv" / "net0.onnx").write_bytes((folder / "net0.onnx").read_bytes())
    (folder / "other").mkdir()
    (folder / "other" / "broken.onnx").write_bytes(b"not onnx")
    for labels in (folder / "labels.csv", tmp_path / "nets.zip"):
        out = tmp_path / f"ft_{labels.name}"
        assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(labels), "--k", "4",
                     "--output", str(out), "--quiet"]) == 0, labels
        assert json.loads((out / "model_card.json").read_text())["finetune"]["k"] == 4
    # a folder brings all its (visible) networks: the broken one is reported by name
    assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(folder), "--output",
                 str(tmp_path / "ft_dir"), "--quiet"]) == 2
    assert "broken.onnx: file: could not import the ONNX model" in capsys.readouterr().err
    (folder / "other" / "broken.onnx").unlink()
    assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(folder), "--k", "4", "--output",
                 str(tmp_path / "ft_dir"), "--quiet"]) == 0
    # a label for a file that is not there names the file, the row and the column
    (folder / "labels.csv").write_text("file,label\nnet0.onnx,80\nmissing.onnx,90\n")
    assert main(["finetune", "--checkpoint", str(checkpoint), "--labels", str(folder / "labels.csv"),
                 "--output", str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "labels.csv" in err and "row 3" in err and "missing.onnx" in err


def test_predict_reference_makes_scores_comparable_across_calls(checkpoint, tmp_path, capsys):
    """Without a reference the score is relative to the predicted set; with ``--reference`` a
    subset predicted alone gets the scores those rows get when the whole set is predicted."""
    cgs, _ = synthetic_dataset(8, seed=11)
    lines = [json.dumps({"id": f"x{i}", "cg": cg.to_dict()}) for i, cg in enumerate(cgs)]
    (tmp_path / "all.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "two.jsonl").write_text("\n".join(lines[2:4]) + "\n")
    (tmp_path / "one.jsonl").write_text(lines[5] + "\n")
    common = ["--checkpoint", str(checkpoint), "--quiet"]

    def run(inp, out, *extra):
        assert main(["predict", "--input", str(tmp_path / inp), "--output", str(tmp_path / out), *common, *extra]) == 0
        return pd.read_csv(tmp_path / out).set_index("id")

    full = run("all.jsonl", "all.csv")
    # tolerance: the float32 encoder's last digits depend on the batch a CG is packed with
    ref = ["--reference", str(tmp_path / "all.jsonl")]
    same = run("all.jsonl", "all_ref.csv", *ref)
    assert same["score"].to_numpy() == pytest.approx(full["score"].to_numpy(), abs=1e-5)
    two = run("two.jsonl", "two.csv", *ref)
    assert two["score"].to_numpy() == pytest.approx(full.loc[["x2", "x3"], "score"].to_numpy(), abs=1e-5)
    assert "standardised on the 8 architectures" in capsys.readouterr().err
    one = run("one.jsonl", "one.csv")
    assert "single architecture" in capsys.readouterr().err
    assert one["score"].iloc[0] == pytest.approx(one["cl_fcm_t"].iloc[0])
    one_ref = run("one.jsonl", "one_ref.csv", *ref)
    assert one_ref["score"].iloc[0] == pytest.approx(full.loc["x5", "score"], abs=1e-5)
    # a reference of one network ranks nothing: refused, naming the option
    assert main(["predict", "--input", str(tmp_path / "two.jsonl"), "--output", str(tmp_path / "x.csv"), *common,
                 "--reference", str(tmp_path / "one.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and "at least two architectures" in err and not (tmp_path / "x.csv").exists()
    # a bad reference is an input error naming the option; nothing is written
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["predict", "--input", str(tmp_path / "two.jsonl"), "--output", str(tmp_path / "x.csv"), *common,
                 "--reference", str(tmp_path / "bad.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "--reference" in err and "bad.jsonl: line 1" in err and not (tmp_path / "x.csv").exists()


def test_predict_skip_invalid_keeps_the_valid_entries(checkpoint, tmp_path, capsys):
    cgs, _ = synthetic_dataset(3, seed=4)
    lines = [json.dumps({"id": "a", "cg": cgs[0].to_dict()}), "{not json",
             json.dumps({"id": "b", "family": "nb201", "spec": "|bad|"}),
             json.dumps({"id": "a", "cg": cgs[1].to_dict()}),           # repeated id
             json.dumps({"id": "c", "cg": cgs[2].to_dict()})]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    base = ["predict", "--input", str(tmp_path / "mixed.jsonl"), "--output", str(out), "--checkpoint",
            str(checkpoint), "--quiet"]
    assert main(base) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "line 2" in err and "--skip-invalid" in err
    assert main([*base, "--skip-invalid"]) == 0
    assert pd.read_csv(out)["id"].tolist() == ["a", "c"]
    err = capsys.readouterr().err
    assert "skipped 3 invalid input(s)" in err
    assert "line 2: not valid JSON" in err and "line 3: field 'spec'" in err and "line 4: id 'a' appears twice" in err
    # an op of the wrong JSON type is one bad line too, not a crash; a byte-order mark is allowed
    bad_op = cgs[0].to_dict()
    bad_op["nodes"][0]["op"] = ["input"]
    (tmp_path / "bom.jsonl").write_text("\ufeff" + "\n".join([lines[0], json.dumps({"id": "d", "cg": bad_op})]) + "\n",
                                        encoding="utf-8")
    assert main(["predict", "--input", str(tmp_path / "bom.jsonl"), "--output", str(out), "--checkpoint",
                 str(checkpoint), "--quiet", "--skip-invalid"]) == 0
    assert pd.read_csv(out)["id"].tolist() == ["a"]
    assert "line 2: field 'cg': nodes[0].op: unknown op ['input']" in capsys.readouterr().err
    (tmp_path / "none.jsonl").write_text("{x\n")
    assert main(["predict", "--input", str(tmp_path / "none.jsonl"), "--output", str(out), "--checkpoint",
                 str(checkpoint), "--quiet", "--skip-invalid"]) == 2
    assert "none of its 1 entries is valid" in capsys.readouterr().err


def test_predict_reads_a_csv_table_in_the_upload_format(checkpoint, tmp_path, capsys):
    """``--input table.csv``: family + spec (or cg) columns as on the app's Data page; a bad row
    stops the command naming it, ``--skip-invalid`` predicts the rest (before, a CSV was read as
    JSONL: 'line 1: not valid JSON')."""
    from engine.families import get

    specs = get("nb201").sample(2, 0)
    (tmp_path / "t.csv").write_text(f"id,family,spec,label\nn0,nb201,{specs[0]},91.0\nbad,nb201,garbage,80\n"
                                    f"n1,nb201,{specs[1]},not a label\n")  # labels are not read by predict
    out = tmp_path / "p.csv"
    base = ["predict", "--input", str(tmp_path / "t.csv"), "--output", str(out), "--checkpoint", str(checkpoint),
            "--quiet"]
    assert main(base) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "t.csv: row 3, field 'spec'" in err and "--skip-invalid" in err
    assert main([*base, "--skip-invalid"]) == 0
    df = pd.read_csv(out)
    assert df["id"].tolist() == ["n0", "n1"]
    assert df["flops"].tolist() == [get("nb201").to_cg(s).flops for s in specs]


@pytest.mark.parametrize("argv, needle", [
    (["pretrain", "--families", "nb201", "--max-per-family", "-5", "--output", "x"],
     "argument --max-per-family: expected an int >= 1, got -5"),
    (["pretrain", "--families", "nb201", "--epochs", "many", "--output", "x"], "argument --epochs: expected an int"),
    (["search", "--start", "x", "--flops-target", "nan"], "argument --flops-target: expected a finite number > 0"),
    (["predict", "--output", "x"], "the following arguments are required: --input"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
])
def test_usage_errors_are_one_line_with_exit_code_2(capsys, argv, needle):
    """Bad option values are caught when the command line is parsed (before: '--max-per-family -5'
    failed inside training with 'negative dimensions are not allowed')."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: python -m engine") and needle in err


def test_predict_notes_when_families_of_another_task_are_scored(tmp_path, capsys):
    """The shipped checkpoint's labels are CIFAR-10; an OFA (ImageNet) network's score ranks it
    but is not its ImageNet accuracy, and the CLI says so.  A CG whose meta holds an odd
    ``family`` value is predicted as usual."""
    from engine.families import get

    cg = synthetic_dataset(1, seed=4)[0][0]
    cg.meta["family"] = ["not", "a", "name"]
    rows = [{"id": "a", "family": "nb201", "spec": get("nb201").sample(1, 0)[0]},
            {"id": "b", "family": "ofa_pn", "spec": get("ofa_pn").sample(1, 0)[0]},
            {"id": "c", "cg": cg.to_dict()}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["predict", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "p.csv"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "note: score is on the scale of the checkpoint's labels (CIFAR-10 accuracy, %). ofa_pn are ImageNet" in err
    assert pd.read_csv(tmp_path / "p.csv")["id"].tolist() == ["a", "b", "c"]


def test_predict_notes_graphs_sized_for_another_task(tmp_path, capsys):
    """A CG row without a family is judged by its input size and class count: a 224x224,
    1000-class network is not on the CIFAR-10 labels' scale."""
    from engine.graphs.cg import CGBuilder

    b = CGBuilder("big", input_hwc=(224, 224, 3))
    big = b.output(b.linear(b.mean(b.conv(b.input(), 8, 3, stride=2)), 1000))
    rows = [{"id": "big", "cg": big.to_dict()}, {"id": "small", "cg": synthetic_dataset(1, seed=4)[0][0].to_dict()}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["predict", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "p.csv"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 network given as a graph takes 224×224 inputs and 1,000 outputs" in err
    assert "Member predictions outside" not in err  # a small network: every member within 0..100


def test_predict_notes_members_outside_0_to_100(tmp_path, capsys):
    """The shipped hand-designed ImageNet CGs: the Eq. 5 members extrapolate past 100 on them."""
    from engine.studio import demo_files

    out = tmp_path / "p.csv"
    assert main(["predict", "--input", str(demo_files()["hand_designed_cgs.jsonl"]), "--output", str(out),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    df = pd.read_csv(out)
    over = int((df["cl_fcm_t"] > 100).sum())
    assert over > 0 and f"note: Member predictions outside 0–100 (cl_fcm_t: {over} of {len(df)}, up to" in err
    assert df["score"].between(0, 100).all()


def test_predict_names_a_pytorch_checkpoint_given_as_input(tmp_path, capsys):
    (tmp_path / "model.pth").write_bytes(b"\x80\x02weights")
    assert main(["predict", "--input", str(tmp_path / "model.pth"), "--output", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "model.pth: not an input format" in err and "torch.onnx.export" in err
    assert not (tmp_path / "p.csv").exists()
