"""web.common (what both apps share), the Space exporter's Python kinds, and the `cifar10 web/export-space` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cifar10.results import result_row
from PIL import Image

from cifar10_cli import main as cli
from onnx_fixtures import MAPPING_B, RED, expected_label, write_model
from test_organize_faults import small_disk  # noqa: F401 (a fixture: a real 2 MiB tmpfs)
from web import common
from web.space import SpaceExportError, export_space
from web_fixtures import png_bytes, sample_dir


@pytest.fixture()
def models_dir(tmp_path) -> Path:
    directory = tmp_path / "models"
    write_model(directory, "colour_a", test_accuracy=0.5)
    write_model(directory, "colour_b", test_accuracy=0.7, mapping=MAPPING_B)
    (directory / "broken.onnx").write_bytes(b"not onnx")
    (directory / "broken.json").write_text(json.dumps({"name": "broken", "test_accuracy": 0.9, "summary": "x"}))
    return directory


def test_models_best_first_with_readable_errors(models_dir):
    models, errors = common.find_models(models_dir)
    assert [m.name for m in models] == ["colour_b", "colour_a"]
    assert common.default_model(models).name == "colour_b"
    assert common.model_choice_label(models[0]) == "colour_b — CIFAR-10 · 10 classes — 70.0% test accuracy"
    assert len(errors) == 1 and "broken.onnx" in errors[0]


def test_classify_sources_uses_the_core_preprocessing(models_dir, tmp_path):
    models, _ = common.find_models(models_dir)
    cache = common.ClassifierCache()
    colour_a = next(m for m in models if m.name == "colour_a")
    clf = cache.get(colour_a)
    assert cache.get(colour_a) is clf and len(cache) == 1  # one classifier per model, per process
    big_red = tmp_path / "red.jpg"
    Image.new("RGB", (1200, 800), RED).save(big_red, quality=95)
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # fully transparent: composited onto white
    preds = common.classify_sources(clf, [
        ("red.jpg", big_red), ("upload.png", png_bytes(np.full((32, 32, 3), (30, 220, 30), np.uint8))),
        ("empty.png", b""), ("text.png", b"hello"), ("clear.png", _png(rgba))])
    assert [p.ok for p in preds] == [True, True, False, False, True]
    assert preds[0].label == expected_label(RED) and preds[0].image.shape == (32, 32, 3)
    assert preds[1].label == "automobile"
    assert preds[2].error == "empty data: not an image"
    assert "not an image" in preds[3].error
    assert (preds[4].image == 255).all()
    row = result_row(preds[0])  # the one serialisation (CLI, desktop, web)
    assert set(common.contract.CLASS_NAMES) <= set(row)
    assert sum(row[name] for name in common.contract.CLASS_NAMES) == pytest.approx(1, abs=1e-4)
    assert preds[0].top_k(None)[0][0] == preds[0].label
    assert cache.get(next(m for m in models if m.name == "colour_b")) is not clf and len(cache) == 2


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_cards_html_escapes_names_and_shows_errors(models_dir):
    models, _ = common.find_models(models_dir)
    clf = common.ClassifierCache().get(models[0])
    preds = common.classify_sources(clf, [("<b>x</b>.png", png_bytes(np.zeros((32, 32, 3), np.uint8))),
                                          ("bad.gif", b"GIF89a-broken")])
    page = common.cards_html(preds, [common.png_data_uri(preds[0].image, 4), None])
    assert "&lt;b&gt;x&lt;/b&gt;.png" in page and "<b>x</b>" not in page
    assert page.count("class='c10-row") == 10
    assert "Could not classify this file" in page and "data:image/png;base64," in page


def test_samples_folder_missing_or_present(tmp_path, monkeypatch):
    assert common.sample_images(tmp_path / "nope") == []
    folder = sample_dir(tmp_path / "samples")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "notes.txt").write_text("x")
    found = common.sample_images(folder)
    assert found and all(p.suffix == ".png" and not p.name.startswith(".") for p in found)
    monkeypatch.setenv(common.SAMPLES_DIR_ENV, str(folder))
    assert common.sample_images() == found


@pytest.mark.parametrize("kind", ["gradio", "streamlit"])
def test_export_python_space(kind, models_dir, tmp_path):
    out = tmp_path / kind
    summary = export_space(kind, out, models_dir=models_dir, samples_dir=sample_dir(tmp_path / "samples"))
    assert summary["models"] == ["colour_b", "colour_a"] and summary["skipped"]
    front = (out / "README.md").read_text().split("---")[1]
    requirements = "\n".join(line for line in (out / "requirements.txt").read_text().splitlines()
                             if not line.startswith("#"))
    assert "onnxruntime==" in requirements and "tensorflow" not in requirements.lower()
    assert (out / "exported_models" / "colour_a.onnx").is_file() and (out / "resources" / "samples").is_dir()
    assert not (out / "exported_models" / "broken.onnx").exists()
    vendored = {p.name for p in (out / "cifar10").iterdir()}
    assert {"preprocess.py", "inference.py", "registry.py", "contract.py"} <= vendored
    for py in (out / "cifar10").glob("*.py"):  # the copied core never needs TensorFlow or the training code
        assert "tensorflow" not in py.read_text() and "from training" not in py.read_text()
    if kind == "gradio":
        assert "sdk: gradio" in front and "app_file: app.py" in front and "sdk_version:" in front
        assert yaml.safe_load(front)["python_version"] == "3.11"  # a string: YAML would read 3.10 as the number 3.1
        assert "gradio" not in requirements  # the Space installs gradio from sdk_version
        assert (out / "app.py").is_file() and (out / "web" / "gradio_app.py").is_file()
    else:
        assert "sdk: docker" in front and "app_port: 8501" in front
        assert "streamlit==" in requirements
        docker = (out / "Dockerfile").read_text()
        assert "EXPOSE 8501" in docker and '"web/streamlit_app.py"' in docker and "--server.port=8501" in docker
    # The copied app imports only what was copied: run it from the Space folder, isolated from this checkout.
    code = ("import sys, json; sys.path.insert(0, '.');"
            "import web.common as c, cifar10; m, e = c.find_models('exported_models');"
            "print(json.dumps([cifar10.__file__, [x.name for x in m], [p.name for p in c.sample_images()]]))")
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=out, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    where, names, samples = json.loads(done.stdout)
    assert Path(where).resolve().is_relative_to(out.resolve())
    assert names == ["colour_b", "colour_a"] and samples


def test_export_refuses_bad_targets(models_dir, tmp_path):
    with pytest.raises(SpaceExportError, match="unknown kind"):
        export_space("flask", tmp_path / "x", models_dir=models_dir)
    with pytest.raises(SpaceExportError, match="no valid models"):
        export_space("static", tmp_path / "x", models_dir=tmp_path / "empty")
    busy = tmp_path / "busy"
    (busy / ".git").mkdir(parents=True)
    (busy / "old.txt").write_text("x")
    with pytest.raises(SpaceExportError, match="not empty"):
        export_space("static", busy, models_dir=models_dir)
    with pytest.raises(SpaceExportError, match="old.txt"):  # --force never removes a file it did not write
        export_space("static", busy, models_dir=models_dir, force=True)
    assert sorted(p.name for p in busy.iterdir()) == [".git", "old.txt"]


def _tree(root: Path) -> dict[str, str]:
    import hashlib
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_force_replaces_only_what_an_export_wrote(models_dir, tmp_path):
    """--force on a folder: the files an earlier export wrote (its record, bytes unchanged) are replaced, and in a
    git clone the Space's README.md and .gitattributes; a file of the user's, a file changed since, a link, or a
    record planted to list other files stop it with one error naming them, before anything is removed."""
    from web.space import RECORD

    space = tmp_path / "space"
    first = export_space("static", space, models_dir=models_dir)
    assert set(json.loads((space / RECORD).read_text())["files"]) == set(first["files"])
    export_space("gradio", space, models_dir=models_dir, force=True)  # another kind over it: only its files left
    assert (space / "app.py").is_file() and not (space / "index.html").exists() and not (space / "ort").exists()
    # What a --force killed half-way leaves (some of its files removed, the record removed last): a rerun goes on.
    for name in sorted(json.loads((space / RECORD).read_text())["files"])[::2]:
        (space / name).unlink()
    export_space("gradio", space, models_dir=models_dir, force=True)
    assert (space / "app.py").is_file() and (space / RECORD).is_file()

    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    cases = {"notes.txt": lambda: (space / "notes.txt").write_text("mine"),
             "app.py": lambda: (space / "app.py").write_text("edited after the export"),
             "photos": lambda: os.symlink(tmp_path / "elsewhere", space / "photos", target_is_directory=True)}
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "cat.jpg").write_bytes(b"jpeg")
    for name, make in cases.items():
        export_space("gradio", space, models_dir=models_dir, force=True)
        make()
        before = _tree(space)
        with pytest.raises(SpaceExportError, match=f"changed since it did: {name}") as refused:
            export_space("static", space, models_dir=models_dir, force=True)
        assert "Nothing was removed" in str(refused.value)
        assert _tree(space) == before and (tmp_path / "elsewhere" / "cat.jpg").read_bytes() == b"jpeg"
        (space / name).unlink()
    # A planted record: entries for files outside, or with another file's sha256, give no licence to remove.
    export_space("gradio", space, models_dir=models_dir, force=True)
    (space / "notes.txt").write_text("mine")
    record = json.loads((space / RECORD).read_text())
    record["files"].update({"../victim.txt": _tree(tmp_path)["victim.txt"], "notes.txt": "0" * 64})
    (space / RECORD).write_text(json.dumps(record))
    with pytest.raises(SpaceExportError, match="notes.txt"):
        export_space("static", space, models_dir=models_dir, force=True)
    assert (space / "notes.txt").read_text() == "mine" and victim.read_text() == "the user's"
    (space / "notes.txt").unlink()
    odd = os.fsdecode(b"caf\xe9 notes.txt")  # a name that is not UTF-8: named readably, left alone
    (space / odd).write_text("mine")
    with pytest.raises(SpaceExportError, match=r"did: caf\\xe9 notes.txt\."):
        export_space("static", space, models_dir=models_dir, force=True)
    assert (space / odd).read_text() == "mine"

    # A fresh clone of a Space: .git, README.md and .gitattributes (Hugging Face's) are fine with --force.
    clone = tmp_path / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (clone / "README.md").write_text("---\ntitle: mine\n---\n")
    (clone / ".gitattributes").write_text("*.onnx filter=lfs\n")
    (clone / "drafts").mkdir()  # an empty folder of the user's stays too
    export_space("static", clone, models_dir=models_dir, force=True)
    assert (clone / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n" and (clone / "index.html").is_file()
    assert (clone / "drafts").is_dir()
    export_space("static", clone, models_dir=models_dir, force=True)
    assert (clone / "drafts").is_dir() and (clone / "models").is_dir()


def test_cli_export_space_and_web_parser(models_dir, tmp_path, capsys):
    assert cli.main(["export-space", str(tmp_path / "s"), "--kind", "static", "--models-dir", str(models_dir),
                     "--samples-dir", str(tmp_path / "none")]) == 2  # a mistyped examples folder: one line, nothing written
    assert "--examples" in capsys.readouterr().err and not (tmp_path / "s").exists()
    (tmp_path / "none").mkdir()
    assert cli.main(["export-space", str(tmp_path / "s"), "--kind", "static", "--models-dir", str(models_dir),
                     "--samples-dir", str(tmp_path / "none")]) == 0
    assert "Wrote a static Space" in capsys.readouterr().out
    assert (tmp_path / "s" / "models.json").is_file()
    assert cli.main(["export-space", str(tmp_path / "s"), "--models-dir", str(models_dir)]) == 2
    assert "not empty" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["web", "--ui", "gradio", "--port", "9999"])
    assert (args.ui, args.port, args.func) == ("gradio", 9999, cli.cmd_web)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["web", "--ui", "flask"])


def test_streamlit_command_line():
    from web.launch import streamlit_command

    cmd = streamlit_command(8765)
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith(os.path.join("web", "streamlit_app.py")) and "8765" in cmd


def test_cards_and_json_show_the_unsure_state_of_a_v2_model(tmp_path):
    """Gradio's cards (and its JSON) with a contract-v2 model: the unsure text instead of a confident label."""
    from PIL import Image

    from cifar10.inference import Classifier
    from cifar10.registry import load_model_info
    from onnx_fixtures import RED, write_v2_model

    clf = Classifier(load_model_info(write_v2_model(tmp_path, "cam_colour", threshold=-3.0, sharpness=60.0)))
    grey, red = tmp_path / "grey.png", tmp_path / "red.png"
    Image.new("RGB", (40, 40), (128, 128, 128)).save(grey)
    Image.new("RGB", (40, 40), (220, 30, 30)).save(red)
    preds = common.classify_sources(clf, [("grey.png", grey), ("red.png", red)])
    assert preds[0].unsure and not preds[1].unsure
    page = common.cards_html(preds)
    assert page.count("data-unsure='true'") == 1 and "unsure: may be none of the 10 classes" in page
    assert "most like airplane" in page
    from cifar10.results import result_row

    rows = [result_row(p) for p in preds]
    assert rows[0]["unsure"] is True and rows[1]["unsure"] is False and isinstance(rows[0]["ood_score"], float)


def test_v3_model_classes_and_size(tmp_path):
    """A contract-v3 model (3 classes, 64 px): uploads are decoded at 64 px, rows (errors too) carry its classes,
    the cards have its 3 bars and the unsure text counts 3; the intro describes it."""
    from cifar10.results import columns, result_row
    from onnx_fixtures import RED, write_model

    write_model(tmp_path, "colours", class_names=("rosso", "verde", "blu"), display_names=("red", "green", "blue"),
                image_size=64, dataset="colours", test_accuracy=0.9)
    model = common.find_models(tmp_path)[0][0]
    clf = common.ClassifierCache().get(model)
    good, bad = common.classify_sources(clf, [("r.png", png_bytes(np.full((90, 70, 3), RED, np.uint8))),
                                              ("bad.png", b"nope")])
    assert good.image.shape == (64, 64, 3) and good.label == "red" and good.classes == ("red", "green", "blue")
    assert bad.error and bad.classes == ("red", "green", "blue")
    assert list(result_row(bad)) == list(columns(("red", "green", "blue")))
    page = common.cards_html([good, bad])
    assert page.count("class='c10-row") == 3 and "airplane" not in page
    good.unsure = True
    assert "may be none of the 3 classes" in common.cards_html([good])
    text = common.intro(model)
    assert "colours" in text and "red, green, blue" in text and "64x64" in text and "CIFAR-10" not in text
    assert common.intro(None) == common.INTRO


def test_bars_beyond_twelve_classes_show_the_top_ten_and_other():
    from cifar10.results import Result

    names = tuple(f"c{i}" for i in range(15))
    probs = np.linspace(1, 15, 15, dtype=np.float32)
    probs /= probs.sum()
    rows = common.bars(Result.from_probabilities("x", probs, classes=names))
    assert [name for name, _, _ in rows[:-1]] == [f"c{i}" for i in range(5, 15)]
    assert rows[-1][0] == "other (5 classes)" and rows[-1][1] == pytest.approx(float(probs[:5].sum()))
    assert [top for _, _, top in rows].count(True) == 1 and rows[-2][2]
    twelve = Result.from_probabilities("y", np.full(12, 1 / 12, np.float32), classes=names[:12])
    assert [name for name, _, _ in common.bars(twelve)] == list(names[:12])


def test_a_full_disk_leaves_no_half_written_space(models_dir, small_disk):  # noqa: F811
    """A static Space does not fit a real 2 MiB tmpfs (onnxruntime-web's wasm alone is larger): one error line
    naming the cause, every file this export wrote is removed again, the clone's .git and a folder of the user's
    stay as they were, and the same command fails the same way (nothing of a half Space blocks it)."""
    clone = small_disk / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (clone / "drafts").mkdir()
    before = _tree(clone)
    for _ in range(2):
        with pytest.raises(SpaceExportError, match="No space left on device; the files written so far were removed"):
            export_space("static", clone, models_dir=models_dir, force=True)
        assert _tree(clone) == before and sorted(p.name for p in clone.iterdir()) == [".git", "drafts"]
