"""`cifar10 classify` on real folders: in-process via cifar10.cli.main and once as a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from cifar10_cli.main import main
from cifar10.contract import CLASS_NAMES
from cifar10.results import FILE_COLUMNS as COLUMNS
from cifar10.results_io import read_results
from image_files import mixed_folder
from onnx_fixtures import MAPPING_B, expected_label, write_model


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A shipped-models folder with two colour models (b is better) and an empty user folder."""
    models = tmp_path / "models"
    write_model(models, "colour_a", test_accuracy=0.6)
    write_model(models, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    images = tmp_path / "images"
    expected = mixed_folder(images)
    return {"models": models, "images": images, "expected": expected, "tmp": tmp_path}


def rows_by_name(rows, root):
    return {os.path.relpath(r["path"], root).replace(os.sep, "/"): r for r in rows}


def test_csv_output_uses_best_model_by_default(env, capsys):
    out = env["tmp"] / "results.csv"
    assert main(["classify", str(env["images"]), "--output", str(out)]) == 1  # 3 files could not be read
    header = out.read_text().splitlines()[0]
    assert header == ",".join(COLUMNS) == ("path,label,confidence,error,unsure,ood_score,model,model_test_accuracy,date,"
                                           + ",".join(CLASS_NAMES))
    rows = rows_by_name(read_results(out), env["images"])
    assert set(rows) == set(env["expected"])
    for name, rgb in env["expected"].items():
        row = rows[name]
        assert row["model"] == "colour_b" and row["model_test_accuracy"] == 0.8 and row["date"][:2] == "20"
        if rgb is None:
            assert row["error"] and row["label"] == "" and row["confidence"] is None and row["cat"] is None
        else:
            assert row["label"] == expected_label(rgb, MAPPING_B)  # colour_b: the best test accuracy
            assert row["error"] == ""
            assert sum(row[c] for c in CLASS_NAMES) == pytest.approx(1.0, abs=1e-4)
            assert row["confidence"] == pytest.approx(row[row["label"]])
    err = capsys.readouterr().err
    assert "model colour_b" in err and "3 could not be classified" in err and "results in" in err
    assert not (env["tmp"] / "results.csv.part").exists()


def test_json_output_with_model_and_top_k(env):
    out = env["tmp"] / "results.json"
    assert main(["classify", str(env["images"] / "red.png"), str(env["images"] / "sub"), "--model", "colour_a",
                 "-o", str(out), "--top-k", "2", "--provider", "cpu"]) == 1  # sub/broken.png
    data = json.loads(out.read_text())
    assert data["model"] == "colour_a" and data["model_test_accuracy"] == 0.6 and data["date"][:2] == "20"
    rows = data["rows"]
    assert [os.path.basename(r["path"]) for r in rows] == ["red.png", "blue.jpg", "broken.png"]
    red = rows[0]
    assert list(red)[:4] == ["path", "label", "confidence", "error"] and red["label"] == "airplane"
    assert red["top_k"][0][0] == "airplane" and len(red["top_k"]) == 2
    assert rows[2]["label"] == "" and rows[2]["confidence"] is None and rows[2]["error"]


def test_table_on_stdout(env, capsys):
    assert main(["classify", str(env["images"]), "--model", "colour_a"]) == 1  # broken files: exit 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["class", "conf"]
    assert len(out) == 1 + len(env["expected"])
    assert any(line.startswith("airplane") and line.endswith("red.png") for line in out)
    assert any(line.startswith("ERROR") and "notes.txt: not an image" in line for line in out)


def test_errors_exit_non_zero_with_a_clear_message(env, capsys):
    assert main(["classify", str(env["tmp"] / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["classify", str(env["images"]), "--model", "missing_model"]) == 2
    assert "no model named 'missing_model'; (available: colour_b, colour_a)" in capsys.readouterr().err
    assert main(["classify", str(env["images"]), "-o", str(env["tmp"] / "results.xlsx")]) == 2
    assert ".csv or .json" in capsys.readouterr().err
    assert main(["classify"]) == 2


def test_no_models_is_a_clear_error(env, monkeypatch, capsys):
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(env["tmp"] / "empty"))
    assert main(["classify", str(env["images"])]) == 2
    assert "no models found in" in capsys.readouterr().err


def test_list_models(env, capsys):
    (env["models"] / "broken.onnx").write_bytes(b"junk")
    assert main(["classify", "--list-models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("* colour_b") and "80.00%" in out
    assert "! " in out and "broken.onnx" in out


def test_subprocess(env):
    out = env["tmp"] / "sub.csv"
    done = subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", str(env["images"]), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 1, done.stderr  # the mixed folder's 3 broken files: 1; rows for every file
    assert len(read_results(out)) == len(env["expected"])
    good = subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", str(env["images"] / "red.png")],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert good.returncode == 0 and "1 file in" in good.stderr, good.stderr
    missing = subprocess.run([sys.executable, "-m", "cifar10_cli", "classify", str(env["tmp"] / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr


def test_unsure_columns_and_summary_with_a_v2_model(tmp_path, monkeypatch, capsys):
    """Contract v2: the CSV's `unsure` / `ood_score` columns and the "N of M unsure" summary line."""
    from PIL import Image

    from onnx_fixtures import RED, write_v2_model

    models = tmp_path / "models"
    write_v2_model(models, "cam_colour", threshold=-3.0, test_accuracy=0.9)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):  # flat grey: no colour to explain, flagged
        Image.new("RGB", (48, 48), (100 + 20 * i,) * 3).save(images / f"grey{i}.png")
    red = Image.new("RGB", (48, 48), (128, 128, 128))
    red.paste(RED, (4, 4, 44, 44))
    red.save(images / "red.png")
    (images / "broken.jpg").write_bytes(b"nope")
    out = tmp_path / "r.csv"
    assert main(["classify", str(images), "-o", str(out)]) == 1  # broken.jpg
    rows = {os.path.basename(r["path"]): r for r in read_results(out)}
    assert [rows[f"grey{i}.png"]["unsure"] for i in range(3)] == [True, True, True]
    assert rows["red.png"]["unsure"] is False and rows["red.png"]["label"] == "airplane"
    assert all(isinstance(rows[n]["ood_score"], float) for n in rows if n != "broken.jpg")
    assert rows["broken.jpg"]["unsure"] is None and rows["broken.jpg"]["ood_score"] is None
    raw = out.read_text().splitlines()
    assert any(",true," in line for line in raw) and any(",false," in line for line in raw)
    assert "3 of 4 unsure: may be none of the 10 classes" in capsys.readouterr().err
    # The table marks them too.
    assert main(["classify", str(images)]) == 1
    table = capsys.readouterr().out
    assert table.count("UNSURE") == 3


def test_v1_model_summary_says_it_has_no_flag(env, capsys):
    out = env["tmp"] / "v1.csv"
    assert main(["classify", str(env["images"]), "-o", str(out)]) == 1
    assert "no open-set score (contract v1)" in capsys.readouterr().err
    rows = read_results(out)
    assert all(r["unsure"] in (False, None) and r["ood_score"] is None for r in rows)


def test_a_mistyped_model_name_gets_a_suggestion_from_the_right_subcommand(tmp_path, models, capsys):
    (tmp_path / "lab" / "airplane").mkdir(parents=True)
    assert main(["evaluate", "--folder", str(tmp_path / "lab"), "--model", "colour_aa"]) == 2
    err = capsys.readouterr().err
    assert "cifar10: error: evaluate: no model named 'colour_aa'; did you mean 'colour_a'?" in err
    assert main(["organize", str(tmp_path / "lab"), "--into", str(tmp_path / "out"), "--model", "colour_aa"]) == 2
    assert "organize: no model named 'colour_aa'; did you mean 'colour_a'?" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "lab"), "--model", "zzz"]) == 2
    err = capsys.readouterr().err
    assert "did you mean" not in err
