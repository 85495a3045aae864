"""Shared test set-up. Qt runs offscreen, so the desktop-app tests need no display."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402


@pytest.fixture()
def models(tmp_path, monkeypatch):
    """A models folder with the tiny colour_a model, the only one the apps find (user folder isolated)."""
    from onnx_fixtures import write_model

    models = tmp_path / "models"
    write_model(models, "colour_a", test_accuracy=0.6)
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return models
