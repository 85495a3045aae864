"""cifar10.registry: discovering models and checking them against the ONNX contract."""

import json

import pytest
from onnx import TensorProto

from cifar10 import paths
from cifar10.registry import ModelError, best_model, discover_models, find_model, load_model_info
from onnx_fixtures import write_model


def test_discovers_valid_models_best_first(tmp_path):
    write_model(tmp_path, "alpha", test_accuracy=0.61)
    write_model(tmp_path, "beta", test_accuracy=0.83)
    models, errors = discover_models([tmp_path])
    assert errors == []
    assert [m.name for m in models] == ["beta", "alpha"]
    assert models[0].test_accuracy == pytest.approx(0.83)
    assert models[0].onnx_path == tmp_path / "beta.onnx"
    assert models[0].card["summary"].startswith("test model beta")
    assert "83.0%" in models[0].label
    assert best_model(models).name == "beta"
    assert best_model([]) is None


@pytest.mark.parametrize("name,build,message", [
    ("wrong_input", {"input_name": "input_1"}, "input is named 'input_1'"),
    ("nchw", {"input_shape": ("N", 3, 32, 32)}, "input shape is [N, 3, 32, 32]"),
    ("fixed_batch", {"input_shape": (1, 32, 32, 3)}, "[1, 32, 32, 3]"),
    ("uint8_input", {"input_type": TensorProto.UINT8}, "tensor(uint8)"),
    ("wrong_output", {"output_name": "dense_2"}, "no output named 'probabilities'"),
    ("five_classes", {"num_classes": 5}, "output shape is [N, 5]"),
    ("class_order", {"metadata": {"class_names": json.dumps(["cat", "dog"])}}, "'class_names' is ['cat', 'dog']"),
    ("no_class_names", {"metadata": {"class_names": None}}, "'class_names' is missing"),
    ("no_contract", {"metadata": {"cifar10_contract": None}}, "'cifar10_contract' is missing"),
    ("future_contract", {"metadata": {"cifar10_contract": "4"}}, "'cifar10_contract' is '4'"),
    ("no_model_name", {"metadata": {"model_name": None}}, "'model_name' is missing"),
])
def test_contract_violations_are_reported_not_raised(tmp_path, name, build, message):
    write_model(tmp_path, "good", test_accuracy=0.7)
    write_model(tmp_path, name, **build)
    models, errors = discover_models([tmp_path])
    assert [m.name for m in models] == ["good"]
    assert len(errors) == 1
    assert errors[0].startswith(str(tmp_path / f"{name}.onnx"))
    assert message in errors[0]


def test_broken_files_and_cards(tmp_path):
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not a protobuf at all")
    (tmp_path / "garbage.json").write_text(json.dumps({"name": "garbage", "test_accuracy": 0.5, "summary": ""}))
    write_model(tmp_path, "no_card", write_card=False)
    write_model(tmp_path, "bad_json")
    (tmp_path / "bad_json.json").write_text("{not json")
    write_model(tmp_path, "no_accuracy")
    (tmp_path / "no_accuracy.json").write_text(json.dumps({"name": "x", "summary": "s"}))
    write_model(tmp_path, "percent_accuracy", test_accuracy=83.0)
    write_model(tmp_path, "list_card")
    (tmp_path / "list_card.json").write_text("[1, 2]")
    models, errors = discover_models([tmp_path])
    assert models == []
    text = "\n".join(errors)
    assert len(errors) == 6
    assert "garbage.onnx: not a loadable ONNX model" in text
    assert "model card no_card.json is missing" in text
    assert "bad_json.json: the model card is not valid JSON" in text
    assert "no_accuracy.json: the model card has no 'test_accuracy'" in text
    assert "'test_accuracy' must be a number between 0 and 1, not 83.0" in text
    assert "must be a JSON object, not list" in text


def test_first_folder_wins_on_duplicate_names(tmp_path):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    write_model(shipped, "same", test_accuracy=0.5)
    write_model(user, "same", test_accuracy=0.9)
    write_model(user, "extra", test_accuracy=0.4)
    models, errors = discover_models([shipped, user, tmp_path / "does-not-exist"])
    assert {m.name: m.onnx_path.parent for m in models} == {"same": shipped, "extra": user}
    assert len(errors) == 1 and "already found" in errors[0]


def test_default_dirs_env_var_and_user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(tmp_path / "shipped"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.shipped_models_dir() == tmp_path / "shipped"
    assert paths.user_models_dir() == tmp_path / "data" / "cifar10-studio" / "models"
    write_model(tmp_path / "shipped", "shipped_one", test_accuracy=0.6)
    write_model(paths.user_models_dir(), "user_one", test_accuracy=0.7)
    models, errors = discover_models()
    assert [m.name for m in models] == ["user_one", "shipped_one"] and errors == []


def test_find_model_by_name_or_path(tmp_path):
    write_model(tmp_path / "a", "known", test_accuracy=0.5)
    outside = write_model(tmp_path / "b", "outside", test_accuracy=0.4)
    models, _ = discover_models([tmp_path / "a"])
    assert find_model("known", models).name == "known"
    assert find_model(str(outside), models).onnx_path == outside
    with pytest.raises(ModelError, match="no model named 'nope'; \\(available: known\\)"):
        find_model("nope", models)
    with pytest.raises(ModelError, match="not found"):
        find_model(tmp_path / "missing.onnx", models)


def test_load_model_info_rejects_a_broken_model(tmp_path):
    path = write_model(tmp_path, "bad", input_name="x")
    with pytest.raises(ModelError, match="input is named 'x'"):
        load_model_info(path)


# --- contract v3: a model of the user's own classes and input size -------------------------------------------

def test_v3_model_says_what_it_knows(tmp_path):
    write_model(tmp_path, "pets", class_names=["cane", "gatto", "ragno"], display_names=["dog", "cat", "spider"],
                image_size=64, dataset="animals", test_accuracy=0.9)
    write_model(tmp_path, "cifar", test_accuracy=0.8)  # v1: CIFAR-10 at 32 px
    models, errors = discover_models([tmp_path])
    assert errors == []
    pets, cifar = models
    assert pets.class_names == ("cane", "gatto", "ragno") and pets.labels == ("dog", "cat", "spider")
    assert (pets.image_size, pets.dataset, pets.num_classes) == (64, "animals", 3)
    assert pets.knows == "animals · 3 classes" and "animals · 3 classes" in pets.label
    assert cifar.labels == cifar.class_names and cifar.num_classes == 10 and cifar.image_size == 32
    assert "CIFAR-10 · 10 classes" in cifar.label


V3 = {"class_names": ["a", "b", "c"], "image_size": 48}


@pytest.mark.parametrize("name,build,message", [
    ("count", {**V3, "num_classes": 4}, "output shape is [N, 4], the contract says [N, 3]"),
    ("small", {**V3, "image_size": 8}, "fixed square size S from 16 to 1024"),
    ("not_square", {**V3, "input_shape": ("N", 48, 40, 3)}, "input shape is [N, 48, 40, 3]"),
    ("dynamic_size", {**V3, "input_shape": ("N", "h", "w", 3)}, "input shape is [N, N, N, 3]"),
    ("one_class", {**V3, "metadata": {"class_names": json.dumps(["a"])}}, "needs at least 2 classes"),
    ("duplicate", {**V3, "metadata": {"class_names": json.dumps(["a", "B", "b"])}}, "unique (ignoring case): B, b"),
    ("reserved", {**V3, "metadata": {"class_names": json.dumps(["a", "label", "c"])}}, "'label' is also a column"),
    ("display_count", {**V3, "metadata": {"display_names": json.dumps(["x", "y"])}}, "2 names for 3 classes"),
    ("card_classes", {**V3, "card": {"class_names": ["a", "b", "d"]}}, "the model card says class_names"),
    ("card_size", {**V3, "card": {"image_size": 32}}, "the model card says image_size 32"),
])
def test_v3_contract_violations(tmp_path, name, build, message):
    build = dict(build)
    if "input_shape" in build:  # the size in the metadata does not matter: the graph's input is checked
        build.pop("image_size")
    write_model(tmp_path, name, **build)
    models, errors = discover_models([tmp_path])
    assert models == [] and len(errors) == 1
    assert message in errors[0], errors[0]


def test_model_metadata_refuses_bad_names():
    from cifar10 import contract

    meta = contract.model_metadata(model_name="m", class_names=["Katze", "Hund"], dataset="tiere")
    assert meta["cifar10_contract"] == "3" and json.loads(meta["class_names"]) == ["Katze", "Hund"]
    with pytest.raises(ValueError, match="at least 2"):
        contract.model_metadata(model_name="m", class_names=["only"])
    with pytest.raises(ValueError, match="one per class"):
        contract.model_metadata(model_name="m", class_names=["a", "b"], display_names=["x", "y", "z"])
