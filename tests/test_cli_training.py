"""Smoke tests of the training side of the `cifar10` command."""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from cifar10.paths import shipped_models_dir, user_models_dir
from cifar10_cli import main as cli
from cifar_fixtures import write_dataset


def test_models_lists_the_registry(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("baseline", "cnn_adam_m1", "cnn_sgd_m1", "vgg16_transfer"):
        assert name in out


def test_missing_extra_names_the_extra():
    error = ImportError("No module named 'tensorflow'", name="tensorflow")
    message = str(cli._require(error))
    assert "'training' extra" in message and "pip install -e '.[training]'" in message


def test_train_then_export_then_evaluate_then_report(tmp_path, capsys):
    data_dir = write_dataset(tmp_path / "cifar", per_batch=1020)
    runs, models_dir = tmp_path / "runs", tmp_path / "models"
    assert cli.main(["train", "--model", "baseline", "--epochs", "1", "--limit", "64", "--data-dir", str(data_dir),
                     "--out", str(runs), "--no-export"]) == 0
    assert not models_dir.exists()
    (run_dir,) = runs.iterdir()
    assert cli.main(["export", str(run_dir), "--export-dir", str(models_dir), "--data-dir", str(data_dir)]) == 0
    card = json.loads((models_dir / "baseline.json").read_text())
    # The card ships to other machines: this machine's absolute paths become "…/<last folder>".
    assert card["training_command"] == ("cifar10 train --model baseline --epochs 1 --limit 64 --data-dir …/cifar "
                                        "--out …/runs --no-export")
    assert card["export_command"] == f"cifar10 export …/{run_dir.name} --export-dir …/models --data-dir …/cifar"
    assert str(tmp_path) not in json.dumps(card)
    capsys.readouterr()
    assert cli.main(["evaluate", str(models_dir / "baseline.onnx"), "--data-dir", str(data_dir),
                     "--limit", "64"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {card['test_accuracy']:.4f} on 64 test images" in out
    # A leaderboard-only model: exported into the models folder's study/ subfolder, which the apps do not read.
    assert cli.main(["train", "--model", "ishu_m2", "--epochs", "1", "--limit", "64", "--data-dir", str(data_dir),
                     "--out", str(runs), "--export-dir", str(models_dir / "study")]) == 0
    study_card = json.loads((models_dir / "study" / "ishu_m2.json").read_text())
    assert cli.main(["report", "--models-dir", str(models_dir), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "leaderboard.md").read_text()
    # One row per column of the study's table, in its order, with the study's figure and ours.
    study_part = report.split("## Every exported model")[0]
    study_rows = [line for line in study_part.splitlines() if line.startswith("| ") and line[2].isdigit()]
    rows = {line.split(" | ")[1]: line for line in study_rows}
    assert list(rows) == ["M1 Baseline Roland", "M2 VGG16 Transfer Learning", "M1 Ishu", "M2 Ishu", "M3 Ishu",
                          "baseline CNN", "baseline_CNN_adam_m1", "sgd_m1", "adam_m2", "Gulmehak (Animals-10)"]
    m2 = rows["M2 Ishu"]
    assert "0.7808 (0.7302), 10" in m2 and "`ishu_m2` (leaderboard only)" in m2
    assert f"**{study_card['test_accuracy']:.4f}**" in m2 and f"{study_card['test_accuracy'] - 0.7808:+.4f}" in m2
    assert "`cifar10 train --model ishu_m2 --epochs 1" in m2 and "cores" in m2
    assert "| changed: epochs 1 (10), limit 64 |" in m2  # what the run changed against the table's recipe
    assert f"**{card['test_accuracy']:.4f}**" in rows["M1 Baseline Roland"]
    assert "not trained yet: `cifar10 train --model ishu_m3`" in rows["M3 Ishu"]
    assert "VGG16 ImageNet weights" in rows["M2 VGG16 Transfer Learning"]
    # Every exported model, and whether it ships in the apps.
    assert "| `baseline` | yes |" in report and "| `ishu_m2` | no |" in report
    # Registered models outside the table with no card here: listed with their command, not silently missing.
    untrained = report.split("## Registered, not trained yet")[1]
    assert "| `fast_cnn_95` | airbench95 in Keras" in untrained and "`cifar10 train --model fast_cnn_95`" in untrained
    assert "`baseline`" not in untrained and "`ishu_m3`" not in untrained  # trained here / a study column
    assert (tmp_path / "report" / "leaderboard.png").stat().st_size > 1000


def test_bad_data_dir_is_a_clear_error_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--data-dir", str(tmp_path / "none"),
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_model_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--model", "nope", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "unknown model 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_init_from_continues_a_run_and_adds_up_its_time(tmp_path, capsys):
    data_dir = write_dataset(tmp_path / "cifar", per_batch=1020)
    runs = tmp_path / "runs"
    common = ["--epochs", "1", "--limit", "64", "--data-dir", str(data_dir), "--out", str(runs), "--no-export"]
    assert cli.main(["train", "--model", "baseline", *common]) == 0
    (first,) = runs.iterdir()
    assert cli.main(["train", "--model", "baseline", "--lr", "1e-4", "--init-from", str(first), *common]) == 0
    (second,) = set(runs.iterdir()) - {first}
    parent, record = (json.loads((d / "run.json").read_text()) for d in (first, second))
    assert record["continues"]["run"] == str(first) and record["continues"]["command"] == parent["command"]
    assert record["training_wall_time_s"] > parent["training_wall_time_s"]  # both stages counted
    capsys.readouterr()
    assert cli.main(["train", "--model", "cnn_adam_m1", "--init-from", str(first), *common]) == 2
    assert "that run trained 'baseline', not 'cnn_adam_m1'" in capsys.readouterr().err


# --- no silent overwrites; a quiet, helpful `cifar10 train` -----------------------------------------------

REPO = Path(__file__).resolve().parents[1]
TENSORFLOW_NOISE = ("oneDNN", "cpu_feature_guard", "absl", "I0000", "W0000", "rebuild TensorFlow")


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def user_home(tmp_path, monkeypatch):
    """The user's folders in tmp_path (XDG_DATA_HOME: user_models_dir()); the real shipped models folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.delenv("CIFAR10_MODELS_DIR", raising=False)
    assert str(user_models_dir()).startswith(str(tmp_path)) and shipped_models_dir() == REPO / "exported_models"
    return tmp_path


def test_train_on_cifar10_keeps_the_shipped_models_and_says_where_the_model_went(user_home):
    """The README's `cifar10 train --model baseline` (no --export-dir), as a user runs it: the shipped
    baseline stays byte for byte, the new model lands in the user's models folder, and the output has no
    TensorFlow start-up banner, no data dict, no Keras warning; its last line says what to do next."""
    data_dir = write_dataset(user_home / "cifar", per_batch=1020)
    shipped = digests(shipped_models_dir())
    assert "baseline.onnx" in shipped
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}  # our defaults only
    env.update(PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "cifar10_cli", "train", "--model", "baseline", "--epochs", "1",
                             "--limit", "64", "--data-dir", str(data_dir), "--out", str(user_home / "runs")],
                            cwd=user_home, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert digests(shipped_models_dir()) == shipped
    assert sorted(p.name for p in user_models_dir().iterdir()) == [
        "baseline.confusion_matrix.png", "baseline.curves.png", "baseline.json", "baseline.onnx"]
    output = result.stdout + result.stderr
    assert not [line for line in output.splitlines() if any(noise in line for noise in TENSORFLOW_NOISE)], output
    assert "Data: {" not in output and "Warning" not in output, output
    assert "Data: CIFAR-10: 10 classes at 32 px; train 64, validation 64, test 64 images" in result.stderr
    # The shipped baseline has the same name and the apps list it first: said before training, and the
    # closing line points at the new model by its path.
    assert f"{shipped_models_dir()} already has a model named baseline" in result.stderr
    assert result.stdout.splitlines()[-1] == (f"Saved model baseline to {user_models_dir()} — try: cifar10 classify "
                                              f"--model {user_models_dir() / 'baseline.onnx'} PHOTOS")


def test_an_existing_name_is_refused_before_training_and_replaced_only_with_replace(user_home, capsys):
    data_dir = write_dataset(user_home / "cifar", per_batch=1020)
    runs, models_dir = user_home / "runs", user_models_dir()
    common = ["--model", "baseline", "--name", "mine", "--epochs", "1", "--limit", "64", "--data-dir", str(data_dir),
              "--out", str(runs)]
    assert cli.main(["train", *common]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"Saved model mine to {models_dir} — try: cifar10 classify --model mine PHOTOS")
    (first_run,) = runs.iterdir()
    before = digests(models_dir)
    assert sorted(before) == ["mine.confusion_matrix.png", "mine.curves.png", "mine.json", "mine.onnx"]

    assert cli.main(["train", *common]) == 2
    message = (f"a model named mine already exists in {models_dir}: pass --replace to replace it, or --name NEW")
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [f"cifar10: error: {message}"]  # one line, before any training
    assert list(runs.iterdir()) == [first_run] and digests(models_dir) == before
    # `cifar10 export` of the finished run: the same rule.
    assert cli.main(["export", str(first_run), "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"cifar10: error: {message}"]
    assert digests(models_dir) == before
    # Only the card is left of a model: still its name.
    (models_dir / "mine.onnx").rename(user_home / "mine.onnx")
    assert cli.main(["train", *common]) == 2 and message in capsys.readouterr().err
    (user_home / "mine.onnx").rename(models_dir / "mine.onnx")

    assert cli.main(["train", *common, "--replace"]) == 0
    after = digests(models_dir)
    assert sorted(after) == sorted(before) and after["mine.json"] != before["mine.json"]
    card = json.loads((models_dir / "mine.json").read_text())
    assert card["name"] == "mine" and card["training_command"].endswith("--replace")
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert cli.main(["export", str(first_run), "--data-dir", str(data_dir), "--replace"]) == 0
    card = json.loads((models_dir / "mine.json").read_text())
    assert card["export_command"] == f"cifar10 export …/{first_run.name} --data-dir …/cifar --replace"


def test_a_failed_replacement_puts_the_old_model_back(tmp_path):
    """move_into_place: when the new pair cannot be completed (here its .onnx is missing), the old .onnx
    and card are back in place, byte for byte, and nothing of the new model is left."""
    from training.export import move_into_place

    models_dir, staging = tmp_path / "models", tmp_path / "models" / ".mine.partial-x"
    staging.mkdir(parents=True)
    (models_dir / "mine.onnx").write_bytes(b"old onnx")
    (models_dir / "mine.json").write_text('{"name": "mine", "old": true}')
    (staging / "mine.json").write_text('{"name": "mine", "new": true}')  # no staging/mine.onnx
    before = digests(models_dir)
    with pytest.raises(FileNotFoundError):
        move_into_place(staging, models_dir, "mine")
    assert {k: v for k, v in digests(models_dir).items() if not k.startswith(".")} == {
        k: v for k, v in before.items() if not k.startswith(".")}
    (staging / "mine.json").write_text('{"name": "mine", "new": true}')
    (staging / "mine.onnx").write_bytes(b"new onnx")
    assert move_into_place(staging, models_dir, "mine") == models_dir / "mine.onnx"
    assert (models_dir / "mine.onnx").read_bytes() == b"new onnx" and '"new"' in (models_dir / "mine.json").read_text()


def test_models_lists_without_tensorflow_banners_unless_verbose(user_home):
    """`cifar10 models` as a terminal shows it (stdout and stderr together): no banner inside the list;
    --verbose lets TensorFlow's start-up lines through (they are there on Linux x86-64 builds)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env.update(PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    shown = {}
    for flags in ([], ["--verbose"]):
        result = subprocess.run([sys.executable, "-m", "cifar10_cli", *flags, "models"], cwd=user_home, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert result.returncode == 0, result.stdout
        shown[bool(flags)] = result.stdout
    assert "baseline" in shown[False].split("Trainable models")[1]
    assert not [line for line in shown[False].splitlines() if any(noise in line for noise in TENSORFLOW_NOISE)]
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert "oneDNN" in shown[True] and "I0000" in shown[True]


def test_start_up_lines_of_tensorflow_are_recognised_and_nothing_else():
    """The lines `import tensorflow` writes to stderr before its logging is set up (TensorFlow 2.21, x86-64)."""
    for line in ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                 "I0000 00:00:1796602562.000445    7080 port.cc:153] oneDNN custom operations are on. You may see "
                 "slightly different numerical results",
                 "I0000 00:00:1796602562.077476    7080 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
                 "To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other operations, rebuild "
                 "TensorFlow with the appropriate compiler flags."):
        assert cli.TENSORFLOW_START_UP.match(line), line
    for line in ("E0000 00:00:1796602562.000445    7080 cuda_dnn.cc:1] could not load cuDNN",
                 "cifar10: error: something", "Data: CIFAR-10: 10 classes", "WARNING: something else"):
        assert not cli.TENSORFLOW_START_UP.match(line), line


def test_verbose_is_global_and_after_the_training_subcommands():
    parser = cli.build_parser()
    assert parser.parse_args(["--verbose", "train"]).verbose
    assert parser.parse_args(["train", "--verbose"]).verbose and parser.parse_args(["models", "--verbose"]).verbose
    assert not parser.parse_args(["train"]).verbose and not parser.parse_args(["classify"]).verbose
    defaults = {name: parser.parse_args([name, *(["RUN"] if name == "export" else [])])
                for name in ("train", "export", "sweep")}
    assert all(args.export_dir is None and not args.replace for args in defaults.values())  # -> user_models_dir()


def test_sweep_refuses_an_existing_name_before_ray_starts(user_home, capsys):
    pytest.importorskip("ray.tune")
    from onnx_fixtures import write_model

    write_model(user_models_dir(), "baseline")
    before = digests(user_models_dir())
    assert cli.main(["sweep", "--model", "baseline", "--epochs", "1", "--limit", "64",
                     "--out", str(user_home / "sweeps")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"cifar10: error: a model named baseline already exists in {user_models_dir()}: pass --replace to replace "
        "it, or --export-dir ANOTHER_FOLDER")  # sweep has no --name
    assert not (user_home / "sweeps").exists() and digests(user_models_dir()) == before


def test_the_default_model_is_the_transfer_model_on_your_own_folder():
    parser = cli.build_parser()
    assert cli.default_train_model(parser.parse_args(["train", "--data", "my-pets"])) == "efficientnet_lite0_linear"
    assert cli.default_train_model(parser.parse_args(["train"])) == "cnn_adam_m1"
    assert cli.default_train_model(parser.parse_args(["train", "--data", "my-pets", "--model", "baseline"])) == "baseline"
