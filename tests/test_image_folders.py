"""Folder datasets: the scan (layouts, classes.json, problems), the decode cache, the splits, and the promise
that what a model trains on is byte-identical to what the apps feed it for the same file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_fixtures import write_dataset
from folder_fixtures import corrupt_jpeg, source_images, write_folder_dataset, write_image
from cifar10.image_cache import cache_folder, cache_images, duplicate_groups
from cifar10.image_folders import FLAT, SPLIT, describe_scan, reserved_names, scan_image_folder
from cifar10.preprocess import load_image
from training.data import Cifar10, DataError, Dataset, load_dataset, load_folder_dataset

ROOT = Path(__file__).resolve().parent.parent


def messages(scan, severity=None) -> str:
    return "\n".join(p.message for p in scan.problems if severity in (None, p.severity))


@pytest.fixture
def folder(tmp_path) -> Path:
    write_folder_dataset(tmp_path / "pets", per_class=12)
    return tmp_path / "pets"


# --- the scan -----------------------------------------------------------------------------------------------

def test_flat_layout_classes_counts_and_the_text_file(folder):
    scan = scan_image_folder(folder)
    assert scan.layout == FLAT and scan.ok
    assert scan.classes == ("airplane", "automobile", "bird") and scan.display_names is None
    # broken.jpg has an image name: the scan counts it, the decode reports it; notes.txt is skipped here.
    assert scan.counts == {"airplane": 13, "automobile": 12, "bird": 12}
    assert [Path(p).name for p in scan.non_images] == ["notes.txt"]
    assert "not image files (notes.txt)" in messages(scan, "warning")
    assert scan.class_files("bird") == sorted(str(p) for p in (folder / "bird").iterdir())
    text = describe_scan(scan)
    assert "3 classes, 37 images" in text and "notes.txt" in text
    json.dumps(scan.to_dict())


def test_split_layout_with_validation_alias_and_test(tmp_path):
    for split, n in (("train", 10), ("validation", 3), ("test", 2)):
        write_folder_dataset(tmp_path / "d" / split, per_class=n, classes=("cat", "dog"), corrupt=False, text=False)
    scan = scan_image_folder(tmp_path / "d")
    assert scan.layout == SPLIT and scan.ok, messages(scan)
    assert scan.split_folders == {"train": "train", "val": "validation", "test": "test"}
    assert scan.split_counts == {"train": {"cat": 10, "dog": 10}, "val": {"cat": 3, "dog": 3},
                                 "test": {"cat": 2, "dog": 2}}
    assert "train 10, val 3, test 2" in describe_scan(scan)


def test_split_layout_problems(tmp_path):
    root = tmp_path / "d"
    write_folder_dataset(root / "train", per_class=10, classes=("cat", "dog"), corrupt=False, text=False)
    write_folder_dataset(root / "val", per_class=2, classes=("cat", "dog", "fox"), corrupt=False, text=False)
    (root / "validation").mkdir()
    (root / "extra").mkdir()
    scan = scan_image_folder(root)
    assert scan.layout == SPLIT
    assert "val and validation are both there" in messages(scan, "error")
    assert "'fox' that train/ does not have" in messages(scan, "warning")
    assert "extra" in messages(scan, "warning")


def test_a_class_named_train_is_a_class(tmp_path):
    for name in ("train", "bus", "plane"):
        write_folder_dataset(tmp_path / "d", per_class=10, classes=(name,), corrupt=False, text=False)
    scan = scan_image_folder(tmp_path / "d")
    assert scan.layout == FLAT and scan.classes == ("bus", "plane", "train")


def test_classes_json_maps_folders_to_display_names(folder):
    (folder / "classes.json").write_text(json.dumps({"airplane": "aereo", "bird": "uccello"}), encoding="utf-8")
    scan = scan_image_folder(folder)
    assert scan.ok and scan.display_names == ("aereo", "automobile", "uccello")
    assert scan.labels == scan.display_names
    assert "airplane (aereo)" in describe_scan(scan)
    assert not any("classes.json" in p for p in scan.non_images)


@pytest.mark.parametrize("content, expected", [
    ('{"airplane": "plane", "cane": "dog"}', "names folder that does not exist: 'cane'"),
    ('{"airplane": "bird"}', "the same display name: 'bird'"),
    ('{"airplane": 3}', "display name of 'airplane' must be a non-empty string"),
    ('{"airplane": ""}', "display name of 'airplane' must be a non-empty string"),
    ('["airplane"]', "must be an object mapping folder names"),
    ('{"airplane": "plane",}', "not valid JSON (line 1"),
])
def test_classes_json_errors(folder, content, expected):
    (folder / "classes.json").write_text(content, encoding="utf-8")
    scan = scan_image_folder(folder)
    assert not scan.ok and expected in messages(scan, "error")


def test_problems_empty_single_few_loose_reserved(tmp_path):
    root = tmp_path / "d"
    write_folder_dataset(root, per_class=3, classes=("cat",), corrupt=False, text=False)
    (root / "dog").mkdir()
    (root / "loose.jpg").write_bytes(b"x")
    scan = scan_image_folder(root)
    assert not scan.ok and scan.classes == ("cat",)
    assert "class folder 'dog' has no images: skipped" in messages(scan, "warning")
    assert "at least 2 classes with images; found only 'cat'" in messages(scan, "error")
    assert "fewer than 10 images" in messages(scan, "warning") and "cat (3)" in messages(scan)
    assert "1 file not in a class folder, left out: loose.jpg" in messages(scan, "warning")

    write_folder_dataset(root, per_class=10, classes=("label", "Confidence"), corrupt=False, text=False)
    scan = scan_image_folder(root)
    errors = messages(scan, "error")
    assert "class folder 'label' is also a column of the results files" in errors and "'Confidence'" in errors
    assert "rename the folder" in errors
    assert {"path", "label", "confidence", "error", "unsure", "ood_score", "model", "model_test_accuracy",
            "date"} <= reserved_names()
    # The model's metadata carries both the folder names and the display names: mapping does not help.
    (root / "classes.json").write_text('{"label": "tag", "confidence": "trust"}', encoding="utf-8")
    assert "class folder 'label' is also a column" in messages(scan_image_folder(root), "error")
    shutil.rmtree(root / "label")
    shutil.rmtree(root / "Confidence")
    (root / "classes.json").write_text('{"cat": "Date"}', encoding="utf-8")
    write_folder_dataset(root, per_class=10, classes=("dog",), corrupt=False, text=False, offset=20)
    assert "display name 'Date' is also a column" in messages(scan_image_folder(root), "error")
    (root / "classes.json").write_text('{"cat": "Dog"}', encoding="utf-8")
    assert "display names 'Dog' and 'dog' differ only in case" in messages(scan_image_folder(root), "error")
    write_folder_dataset(root, per_class=10, classes=("CAT",), corrupt=False, text=False, offset=40)
    (root / "classes.json").unlink()
    assert "class folders 'CAT' and 'cat' differ only in case" in messages(scan_image_folder(root), "error")


def test_non_ascii_and_nfd_class_names(tmp_path):
    root = tmp_path / "d"
    nfd = unicodedata.normalize("NFD", "café")  # how macOS writes folder names
    write_folder_dataset(root, per_class=10, classes=(nfd, "狗", "gatto ñ"), corrupt=False, text=False)
    (root / "classes.json").write_text(json.dumps({"café": "coffee", "狗": "dog"}, ensure_ascii=False),
                                       encoding="utf-8")
    scan = scan_image_folder(root)
    assert scan.ok, messages(scan)
    assert scan.classes == ("café", "gatto ñ", "狗") and all(unicodedata.is_normalized("NFC", c) for c in scan.classes)
    assert scan.display_names == ("coffee", "gatto ñ", "dog")
    assert "狗 (dog)" in describe_scan(scan)


def test_odd_input_never_crashes(tmp_path):
    assert "does not exist" in messages(scan_image_folder(tmp_path / "nowhere"), "error")
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert "is not a folder" in messages(scan_image_folder(tmp_path / "file.jpg"), "error")

    root = tmp_path / "d"
    write_folder_dataset(root, per_class=10, classes=("cat", "dog"), corrupt=False, text=False)
    elsewhere = tmp_path / "elsewhere"
    write_folder_dataset(elsewhere, per_class=10, classes=("fox",), corrupt=False, text=False)
    os.symlink(elsewhere / "fox", root / "fox")                    # a linked class folder is a class
    os.symlink(tmp_path / "missing.jpg", root / "cat" / "gone.jpg")  # a broken link is no file
    os.symlink(root, root / "dog" / "loop")                          # links inside classes are not followed
    (root / ".hidden").mkdir()
    (root / "__MACOSX").mkdir()
    (root / "cat" / "Thumbs.db").write_bytes(b"x")
    (root / "cat" / "._photo.jpg").write_bytes(b"x")
    if sys.platform != "darwin":  # a file name that is not valid UTF-8
        with open(os.path.join(os.fsencode(root / "dog"), b"bad-\xff.jpg"), "wb") as f:
            f.write((root / "dog" / "dog_0.jpg").read_bytes())
    scan = scan_image_folder(root)
    assert scan.ok, messages(scan)
    assert scan.classes == ("cat", "dog", "fox") and scan.counts["cat"] == 10 and scan.counts["fox"] == 10
    assert scan.counts["dog"] == (11 if sys.platform != "darwin" else 10)
    describe_scan(scan).encode("utf-8")
    json.dumps(scan.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="permissions do not apply (Windows, root)")
def test_unreadable_folder_is_a_problem(tmp_path):
    root = tmp_path / "d"
    write_folder_dataset(root, per_class=10, classes=("cat", "dog"), corrupt=False, text=False)
    os.chmod(root, 0)
    try:
        assert "cannot read the folder" in messages(scan_image_folder(root), "error")
    finally:
        os.chmod(root, 0o755)


# --- the cache --------------------------------------------------------------------------------------------

def image_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.suffix in (".jpg", ".png"))


@pytest.mark.parametrize("size", [32, 128])
def test_training_input_is_byte_identical_to_the_app_input(folder, tmp_path, size):
    """The key promise: for the same file, the cached training row IS load_image(path, size=S)."""
    dataset = load_folder_dataset(folder, size, cache_dir=tmp_path / "cache")
    checked = 0
    for split, rows in (("train", dataset.train), ("validation", dataset.val), ("test", dataset.test)):
        assert len(dataset.files[split]) == len(rows)
        for path, x, y in zip(dataset.files[split], rows.x, rows.y):
            app_input = load_image(path, size=size)
            assert x.dtype == app_input.dtype == np.uint8 and x.shape == (size, size, 3)
            assert x.tobytes() == app_input.tobytes(), path
            assert dataset.class_names[y] == Path(path).parent.name
            checked += 1
    assert checked == 36 and {Path(p).suffix for s in dataset.files.values() for p in s} == {".jpg", ".png"}


def test_cache_reused_while_unchanged_and_rebuilt_for_changed_files(folder, tmp_path):
    files = image_files(folder)
    calls = []
    first = cache_images(files, 48, root=folder, cache_dir=tmp_path / "c", progress=lambda d, t: calls.append((d, t)))
    assert first.decoded == len(files) and first.reused == 0 and calls[0] == (0, len(files))
    assert calls[-1] == (len(files), len(files))
    assert list(first.errors) == [str(folder / "airplane" / "broken.jpg")]
    assert "truncated" in first.errors[str(folder / "airplane" / "broken.jpg")]
    assert isinstance(first.images, np.memmap) and not first.images.flags.writeable
    npy = next(first.folder.glob("images-*.npy"))

    again = cache_images(files, 48, root=folder, cache_dir=tmp_path / "c")
    assert again.decoded == 0 and again.reused == len(files)          # nothing decoded the second time
    assert next(again.folder.glob("images-*.npy")) == npy             # the same array file, not rewritten
    np.testing.assert_array_equal(again.images, first.images)

    touched = folder / "bird" / "bird_3.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    replaced = folder / "automobile" / "automobile_0.jpg"
    write_image(replaced, source_images(5, 1)[0], 100)                 # other pixels, same name
    after = cache_images(files, 48, root=folder, cache_dir=tmp_path / "c")
    assert after.decoded == 2 and after.reused == len(files) - 2
    i = files.index(str(replaced))
    assert after.images[i].tobytes() == load_image(replaced, size=48).tobytes() != first.images[i].tobytes()
    assert [p.name for p in after.folder.glob("images-*.npy")] != [npy.name]  # old array removed, new one named
    assert len(list(after.folder.glob("images-*.npy"))) == 1

    added = write_image(folder / "bird" / "new.png", source_images(2, 1)[0], 64)
    more = cache_images([*files, str(added)], 48, root=folder, cache_dir=tmp_path / "c")
    assert more.decoded == 1 and more.images[-1].tobytes() == load_image(added, size=48).tobytes()

    # Another size or another folder is another cache.
    assert cache_folder(folder, 48, tmp_path / "c") != cache_folder(folder, 64, tmp_path / "c")
    assert cache_images(files, 64, root=folder, cache_dir=tmp_path / "c").decoded == len(files)


KILLED_BUILD = """
import os, signal, sys
from cifar10.image_cache import cache_images
files = sys.argv[2:]
def progress(done, total):
    if done >= total // 2:
        os.kill(os.getpid(), signal.SIGKILL)
cache_images(files, 48, root=sys.argv[1], cache_dir=sys.argv[1] + "-cache", progress=progress, workers=1)
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_killed_build_is_never_reused(folder, tmp_path):
    files = image_files(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def killed_build():
        run = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(folder), *files], env=env, timeout=60)
        assert run.returncode == -9

    killed_build()
    cache = Path(f"{folder}-cache")
    (leftover,) = cache.glob("*/images-*.tmp.npy")
    assert not list(cache.glob("*/manifest.json"))
    built = cache_images(files, 48, root=folder, cache_dir=cache)
    assert built.decoded == len(files) and not leftover.exists()

    # Killed while rebuilding over a complete cache: the previous build stays the one that counts.
    replaced = folder / "bird" / "bird_0.jpg"
    write_image(replaced, source_images(4, 1)[0], 120)
    killed_build()
    after = cache_images(files, 48, root=folder, cache_dir=cache)
    assert after.decoded == 1
    for i, path in enumerate(files):
        if after.ok[i]:
            assert after.images[i].tobytes() == load_image(path, size=48).tobytes()

    # A damaged array file (cut short) is not reused either.
    npy = next(cache.glob("*/images-*.npy"))
    npy.write_bytes(npy.read_bytes()[:1000])
    assert cache_images(files, 48, root=folder, cache_dir=cache).decoded == len(files)


def test_default_cache_dir_is_the_user_cache(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dataset = load_folder_dataset(folder, 32)
    assert Path(dataset.report["cache"]["folder"]).parent == tmp_path / "xdg" / "cifar10-studio" / "datasets"


def test_duplicate_groups():
    assert duplicate_groups(["a", "b", "a", "", "", "b", "c"]) == [[0, 2], [1, 5]]


# --- the dataset --------------------------------------------------------------------------------------------

def test_stratified_split_proportions_and_seed(tmp_path):
    write_folder_dataset(tmp_path / "d", per_class=20, corrupt=False, text=False)
    a = load_folder_dataset(tmp_path / "d", 32, seed=3, validation_fraction=0.2, test_fraction=0.1,
                            cache_dir=tmp_path / "c")
    assert (len(a.train), len(a.val), len(a.test)) == (42, 12, 6)
    for split, per_class in (("train", 14), ("validation", 4), ("test", 2)):
        assert all(counts[split] == per_class for counts in a.report["classes"].values())
    assert np.bincount(a.val.y).tolist() == [4, 4, 4]
    assert a.report["seed"] == 3 and a.report["validation_fraction"] == 0.2 and a.report["test_fraction"] == 0.1
    assert not set(a.files["train"]) & set(a.files["validation"]) and not set(a.files["test"]) & set(a.files["train"])

    b = load_folder_dataset(tmp_path / "d", 32, seed=3, validation_fraction=0.2, test_fraction=0.1,
                            cache_dir=tmp_path / "c")
    assert b.files == a.files and b.report["cache"]["decoded"] == 0
    np.testing.assert_array_equal(b.train.x, a.train.x)
    c = load_folder_dataset(tmp_path / "d", 32, seed=4, validation_fraction=0.2, test_fraction=0.1,
                            cache_dir=tmp_path / "c")
    assert c.files["test"] != a.files["test"]


def test_folder_dataset_report_names_what_was_left_out(folder, tmp_path):
    shutil.copy(folder / "bird" / "bird_1.png", folder / "bird" / "copy of bird_1.png")      # same class
    shutil.copy(folder / "bird" / "bird_2.jpg", folder / "automobile" / "bird_2.jpg")      # another class
    (folder / "classes.json").write_text('{"automobile": "car"}', encoding="utf-8")
    stages = []
    dataset = load_folder_dataset(folder, 40, cache_dir=tmp_path / "c", progress=lambda *a: stages.append(a))
    assert isinstance(dataset, Dataset) and Dataset is Cifar10
    assert dataset.class_names == ("airplane", "automobile", "bird")
    assert dataset.display_names == dataset.labels == ("airplane", "car", "bird")
    assert dataset.name == "pets" and dataset.image_size == 40 and dataset.num_classes == 3
    assert stages[0] == ("scan", 39, 39) and stages[-1] == ("cache", 39, 39)
    report = dataset.report
    assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.jpg"]
    assert "truncated" in report["skipped"][0]["reason"]
    assert [Path(p).name for p in report["non_images"]] == ["notes.txt"]
    across, same = report["duplicates"]  # in the order of their first file: automobile/ before bird/
    assert same["classes"] == ["bird"] and same["kept"].endswith("bird_1.png")
    assert across["classes"] == ["automobile", "bird"] and across["kept"] is None
    used = {Path(p).name for s in dataset.files.values() for p in s}
    assert "bird_1.png" in used and "copy of bird_1.png" not in used and "bird_2.jpg" not in used
    # 36 written + 2 copies; broken.jpg unreadable; the same-class copy kept once; both cross-class copies out.
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == 38 - 1 - 2
    text = "\n".join(report["warnings"])
    assert "broken.jpg" in text and "kept once" in text and "different classes (automobile, bird)" in text
    described = dataset.describe()
    assert described["dataset"] == "pets" and described["display_names"] == ["airplane", "car", "bird"]
    json.dumps(described)


def test_split_folders_and_missing_test_folder(tmp_path):
    root = tmp_path / "d"
    write_folder_dataset(root / "train", per_class=20, classes=("cat", "dog"), corrupt=False, text=False)
    write_folder_dataset(root / "val", per_class=4, classes=("cat", "dog"), corrupt=False, text=False, offset=20)
    dataset = load_folder_dataset(root, 32, cache_dir=tmp_path / "c")
    assert len(dataset.val) == 8 and all(Path(p).parts[-3] == "val" for p in dataset.files["validation"])
    assert len(dataset.test) == 4 and all(Path(p).parts[-3] == "train" for p in dataset.files["test"])
    assert "no test/ folder" in dataset.report["splits"]["test"]["from"]
    assert dataset.report["splits"]["validation"]["from"] == "the val/ folder"


def test_limit_and_unusable_folders(folder, tmp_path):
    small = load_folder_dataset(folder, 32, limit=5, cache_dir=tmp_path / "c")
    assert small.report["files"] == 15
    assert len(small.train) + len(small.val) + len(small.test) == 15

    with pytest.raises(DataError, match="does not exist"):
        load_folder_dataset(tmp_path / "nowhere", 32)
    (tmp_path / "one" / "cat").mkdir(parents=True)
    shutil.copy(folder / "bird" / "bird_1.png", tmp_path / "one" / "cat")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_folder_dataset(tmp_path / "one", 32)
    broken = tmp_path / "broken"
    write_folder_dataset(broken, per_class=10, classes=("cat", "dog"), corrupt=False, text=False)
    for path in (broken / "dog").iterdir():
        corrupt_jpeg(path)
    with pytest.raises(DataError, match="no readable image left in class 'dog'"):
        load_folder_dataset(broken, 32, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="validation_fraction"):
        load_folder_dataset(folder, 32, validation_fraction=1.5)


def test_tiny_classes_still_split(tmp_path):
    write_folder_dataset(tmp_path / "d", per_class=3, corrupt=False, text=False)
    write_folder_dataset(tmp_path / "d", per_class=1, classes=("zebra",), corrupt=False, text=False, offset=5)
    dataset = load_folder_dataset(tmp_path / "d", 32, cache_dir=tmp_path / "c")
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == 10
    assert any("not stratified" in w for w in dataset.report["warnings"])


def test_load_dataset_cifar10_by_default_and_folders(folder, tmp_path, monkeypatch):
    write_dataset(tmp_path / "cifar", per_batch=20)
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "cifar"))
    cifar = load_dataset(validation_size=10)
    assert cifar.name == "CIFAR-10" and cifar.image_size == 32 and len(cifar.class_names) == 10
    assert len(cifar.val) == 10 and cifar.report == {} and cifar.describe()["validation"] == 10
    assert load_dataset(tmp_path / "cifar", validation_size=10).train.x.shape == (90, 32, 32, 3)
    with pytest.raises(DataError, match="CIFAR-10's images are 32x32"):
        load_dataset(None, 128)
    pets = load_dataset(folder, 64, cache_dir=tmp_path / "c", seed=1)
    assert pets.image_size == 64 and pets.train.x.shape[1:] == (64, 64, 3) and pets.report["seed"] == 1
