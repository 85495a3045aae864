"""cifar10.inference: real onnxruntime sessions on tiny models, real files on disk."""

import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from cifar10.contract import CLASS_NAMES
from cifar10.inference import (Classifier, ProviderError, Result, available_providers, classify_files,
                               iter_image_files, iter_result_batches)
from cifar10.registry import load_model_info
from image_files import mixed_folder, solid
from onnx_fixtures import BLUE, GREEN, MAPPING_B, RED, expected_label, write_model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    write_model(directory, "colour_a", test_accuracy=0.6)
    write_model(directory, "colour_b", test_accuracy=0.8, mapping=MAPPING_B)
    return directory


@pytest.fixture(scope="module")
def clf_a(models_dir):
    return Classifier(models_dir / "colour_a.onnx", provider="cpu")


def test_classifier_predicts_probabilities(clf_a, models_dir):
    assert clf_a.provider == "cpu" and clf_a.provider_name == "CPUExecutionProvider"
    assert clf_a.model.name == "colour_a" and clf_a.model.test_accuracy == 0.6
    batch = np.stack([np.full((32, 32, 3), c, np.uint8) for c in (RED, GREEN, BLUE)])
    probs = clf_a.predict(batch)
    assert probs.shape == (3, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [CLASS_NAMES[i] for i in probs.argmax(1)] == ["airplane", "automobile", "bird"]
    np.testing.assert_allclose(clf_a.predict(batch.astype(np.float32)), probs, atol=1e-6)  # float32 accepted
    np.testing.assert_allclose(clf_a.predict(batch[0]), probs[:1], atol=1e-6)            # a single image too
    assert clf_a.predict(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 10)
    with pytest.raises(ValueError, match="32, 32, 3"):
        clf_a.predict(np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match="float64"):
        clf_a.predict(np.zeros((1, 32, 32, 3)))
    # A ModelInfo works as well as a path, and "auto" picks what onnxruntime has.
    auto = Classifier(load_model_info(models_dir / "colour_b.onnx"))
    assert auto.provider == ("cuda" if "CUDAExecutionProvider" in available_providers() else "cpu")


def test_cuda_requested_without_cuda_is_a_clear_error(models_dir):
    if "CUDAExecutionProvider" in available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ProviderError, match="CUDA was requested.*--provider cpu"):
        Classifier(models_dir / "colour_a.onnx", provider="cuda")
    with pytest.raises(ProviderError, match="unknown provider"):
        Classifier(models_dir / "colour_a.onnx", provider="tpu")


def test_folder_with_good_and_broken_files(tmp_path, clf_a):
    expected = mixed_folder(tmp_path)
    results = list(classify_files(clf_a, [tmp_path], batch_size=2))
    got = {os.path.relpath(r.path, tmp_path).replace(os.sep, "/"): r for r in results}
    assert set(got) == set(expected)  # every file a row, the hidden one skipped
    for name, rgb in expected.items():
        result = got[name]
        if rgb is None:
            assert result.error and result.label == "" and result.probabilities is None and not result.ok
        else:
            assert result.ok and result.label == expected_label(rgb), name
            assert result.confidence == pytest.approx(float(result.probabilities.max()))
            assert result.image is None  # not kept unless asked
    assert "not an image" in got["notes.txt"].error
    assert "truncated" in got["sub/broken.png"].error or "corrupt" in got["sub/broken.png"].error
    assert got["red.png"].top_k(2)[0] == ("airplane", pytest.approx(got["red.png"].confidence))


def test_iter_image_files_order_hidden_and_duplicates(tmp_path):
    mixed_folder(tmp_path)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.png").write_bytes(b"x")
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    files = list(iter_image_files([tmp_path, tmp_path / "red.png", tmp_path / ".hidden.png"]))
    names = [os.path.relpath(f, tmp_path).replace(os.sep, "/") for f in files]
    assert names == ["empty.jpg", "green.bmp", "notes.txt", "red.png", "sub/blue.jpg", "sub/broken.png",
                     ".hidden.png"]  # sorted, recursive, red.png once, hidden only when named explicitly
    assert list(iter_image_files([tmp_path / "missing.png"])) == [str(tmp_path / "missing.png")]


def test_missing_explicit_file_gets_an_error_row(tmp_path, clf_a):
    (result,) = classify_files(clf_a, [tmp_path / "gone.png"])
    assert result.error == "file not found"


def test_progress_batches_and_kept_images(tmp_path, clf_a):
    for i in range(5):
        solid(tmp_path / f"{i}.png", RED if i % 2 else BLUE)
    calls = []
    batches = list(iter_result_batches(clf_a, [tmp_path], 2, on_progress=lambda d, t: calls.append((d, t)),
                                       keep_images=True))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]
    first = batches[0][0]
    assert first.image.shape == (32, 32, 3) and tuple(first.image[0, 0]) == BLUE


def test_should_stop_ends_the_run_early(tmp_path, clf_a):
    for i in range(12):
        solid(tmp_path / f"{i:02d}.png", GREEN)
    progress = []
    results = list(classify_files(clf_a, [tmp_path], batch_size=4, on_progress=lambda d, t: progress.append(d),
                                  should_stop=lambda: len(progress) >= 2))  # stop after the first batch
    assert len(results) == 4 and all(r.label == "automobile" for r in results)


def test_results_stream_without_holding_every_image(tmp_path, clf_a):
    # Peak Python/numpy memory must not grow with the number of files (batches are streamed).
    rng = np.random.default_rng(0)
    for i in range(240):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")

    def peak(count):
        files = sorted(tmp_path.iterdir())[:count]
        tracemalloc.start()
        n = sum(1 for _ in classify_files(clf_a, files, batch_size=16, workers=2))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert n == count
        return top

    small, large = peak(48), peak(240)
    assert large < small * 2, (small, large)  # 5x the files, not 5x the memory


def test_result_dataclass():
    result = Result.from_probabilities("x.png", np.eye(10, dtype=np.float32)[3])
    assert (result.label, result.confidence, result.error, result.ok) == ("cat", 1.0, "", True)
    failed = Result("y.png", error="boom")
    assert not failed.ok and failed.top_k() == [] and np.isnan(failed.confidence)


def test_core_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, cifar10.inference, cifar10.registry, cifar10.preprocess, cifar10.results_io, "
            "cifar10_cli.classify; bad = [m for m in ('tensorflow', 'keras', 'onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
