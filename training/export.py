"""Export a finished run to the ONNX contract, measure it on the test set, write its model card."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from cifar10 import contract
from cifar10.options import TTA_MODES
from training.data import Cifar10, load_cifar10
from training.evaluate import onnx_probabilities
from training.metrics import classification_metrics
from training.models import get_spec
from training.plots import plot_confusion

OPSET = 17
PARITY_IMAGES = 1000


SPEC = (tf.TensorSpec([None, contract.IMAGE_SIZE, contract.IMAGE_SIZE, 3], tf.float32, name=contract.INPUT_NAME),)




def serving_function(model: keras.Model, tta: str = "none") -> tf.types.experimental.PolymorphicFunction:
    """What the exported graph computes: raw 0..255 RGB in, probabilities out (the contract).

    Test-time augmentation, built into the graph (the models are trained on flipped and shifted views):
    - "flip": the mean of the image's and its mirror image's probabilities;
    - "flip_shift": airbench's mirror + translate TTA: 1/2 "flip" of the image + 1/4 "flip" of it shifted
      one pixel up-left + 1/4 shifted one pixel down-right (reflect-padded), 6 views in all.
    """
    if tta not in TTA_MODES:
        raise ValueError(f"unknown tta {tta!r}: one of {', '.join(TTA_MODES)}")

    def probs(x):
        # training=False: dropout off, BatchNorm uses its moving statistics.
        return tf.cast(model(x, training=False), tf.float32)

    def mirror_mean(x):
        return (probs(x) + probs(tf.reverse(x, axis=[2]))) / 2

    @tf.function(input_signature=SPEC)
    def serve(image):
        if tta == "none":
            out = probs(image)
        elif tta == "flip":
            out = mirror_mean(image)
        else:
            padded = tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            up_left, down_right = padded[:, 2:, 2:, :], padded[:, :-2, :-2, :]
            out = 0.5 * mirror_mean(image) + 0.25 * mirror_mean(up_left) + 0.25 * mirror_mean(down_right)
        return {contract.OUTPUT_NAME: out}
    return serve


def to_onnx(model: keras.Model, path: Path, name: str, tta: str = "none") -> Path:
    """Convert with tf2onnx and stamp the contract's metadata into the ONNX file (a v1 graph: probabilities
    only; :func:`calibrate_file` then makes it v2)."""
    proto, _ = tf2onnx.convert.from_function(serving_function(model, tta), input_signature=SPEC, opset=OPSET)
    meta = {
        contract.META_CLASS_NAMES: json.dumps(list(contract.CLASS_NAMES)),
        contract.META_MODEL_NAME: name,
        contract.META_CONTRACT: "1",
    }
    for key, value in meta.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    proto.producer_name = "cifar10-studio (tf2onnx)"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".onnx.part")
    onnx.save(proto, partial)
    partial.replace(path)
    return path


def calibrate_file(onnx_path: Path, data: Cifar10) -> dict:
    """Contract v2 in place: temperature, logits, open-set score (+ CAM when the head allows), fitted on the
    validation split; a model trained on every training image (no validation split) is cross-fitted on the
    two halves of the test set instead (docs/trust.md). Returns the card's ``calibration`` / ``open_set``."""
    from training.calibration import upgrade

    if len(data.val):
        images, labels, crossfit = data.val.x, data.val.y, False
        source = f"the validation split: the last {len(data.val):,} training images, never trained on"
    else:
        images, labels, crossfit = data.test.x, data.test.y, True
        source = (f"the {len(data.test):,} test images, cross-fitted on their two halves (no held-out training "
                  "images: the model trained on all of them)")
    upgraded, card = upgrade(onnx.load(onnx_path), images, labels, source=source, crossfit=crossfit,
                             train_images=data.train.x)
    partial = onnx_path.with_suffix(".onnx.part")
    onnx.save(upgraded, partial)
    partial.replace(onnx_path)
    return card


def parity(model: keras.Model, onnx_path: Path, images: np.ndarray, tta: str = "none") -> dict:
    """Keras (in TensorFlow) vs onnxruntime on the same images: how far apart the probabilities are."""
    serve = serving_function(model, tta)
    keras_probs = np.concatenate([serve(tf.constant(images[i:i + 500], tf.float32))[contract.OUTPUT_NAME].numpy()
                                  for i in range(0, len(images), 500)])
    onnx_probs = onnx_probabilities(onnx_path, images)
    return {
        "images": int(len(images)),
        "max_abs_diff": float(np.abs(keras_probs - onnx_probs).max()),
        "argmax_agreement": float((keras_probs.argmax(1) == onnx_probs.argmax(1)).mean()),
    }


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def library_versions() -> dict:
    import onnxruntime
    import sklearn
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__}


def export_run(run_dir: Path, export_dir: Path, *, data: Cifar10 | None = None, data_dir=None,
               tta: str | None = None, command: str | None = None) -> Path:
    """Export a run's best checkpoint; ``tta`` overrides the test-time augmentation the run asked for.

    ``command``: the `cifar10 export` command line when the export is a separate step (kept in the card)."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    name = record["model"]
    spec = get_spec(name)
    model = float32_copy(keras.models.load_model(run_dir / record.get("checkpoint", "best.keras")))
    if data is None:
        data = load_cifar10(data_dir, limit=record["settings"].get("limit"))

    tta = tta or record["settings"].get("tta", "none")
    onnx_path = to_onnx(model, Path(export_dir) / f"{name}.onnx", name, tta)
    parity_figures = parity(model, onnx_path, data.test.x[:PARITY_IMAGES], tta)  # the v1 graph vs Keras
    trust = calibrate_file(onnx_path, data)
    # The card's test figures come from the shipped artefact (the ONNX model), on the whole test set.
    metrics = classification_metrics(data.test.y, onnx_probabilities(onnx_path, data.test.x))
    plot_confusion(np.array(metrics["confusion_matrix"]), run_dir / "confusion_matrix.png", name)

    card = {
        "name": name,
        "summary": spec.summary,
        "test_accuracy": round(metrics["accuracy"], 4),
        "training_wall_time_s": record["training_wall_time_s"],
        "precision_macro": round(metrics["precision_macro"], 4),
        "recall_macro": round(metrics["recall_macro"], 4),
        "f1_macro": round(metrics["f1_macro"], 4),
        "ece": round(metrics["ece"], 4),
        **trust,
        "contract": contract.CONTRACT_VERSION,
        "parameters": int(model.count_params()),
        "architecture": architecture_summary(model),
        "training_command": record["command"],
        "export_command": command,
        "training": {k: record[k] for k in ("settings", "checkpoint", "epochs_run", "best_epoch",
                                            "best_val_accuracy", "continues", "finished") if k in record},
        "data": record["data"],
        "machine": machine(),
        "test_metrics": metrics,
        "onnx": {"file": onnx_path.name, "opset": OPSET, "input": [None, 32, 32, 3], "input_range": "0..255 RGB",
                 "output": [None, 10], "test_time_augmentation": tta,
                 "parity_vs_keras": parity_figures, "outputs": onnx_outputs(onnx_path)},
        "study": spec.study,
        "libraries": library_versions(),
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    card_path = onnx_path.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    for plot in ("curves.png", "confusion_matrix.png"):
        if (run_dir / plot).exists():
            shutil.copy(run_dir / plot, Path(export_dir) / f"{name}.{plot}")
    print(f"Exported {name}: test accuracy {metrics['accuracy']:.4f} (ONNX, {metrics['n']} images), "
          f"parity vs Keras {parity_figures}; card {card_path}", file=sys.stderr)
    return onnx_path


def onnx_outputs(onnx_path: Path) -> list[str]:
    return [o.name for o in onnx.load(onnx_path, load_external_data=False).graph.output]


def float32_copy(model: keras.Model) -> keras.Model:
    """The model with every layer computing in float32: a model trained under mixed_bfloat16 keeps its
    float32 weights, but its saved layers would put bfloat16 ops into the ONNX graph."""
    config = json.loads(model.to_json())

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {key: to_float32(value) for key, value in node.items()}
        if isinstance(node, list):
            return [to_float32(value) for value in node]
        return node
    if config == to_float32(config):
        return model
    copy = keras.models.model_from_json(json.dumps(to_float32(config)))
    copy.set_weights(model.get_weights())
    return copy


def architecture_summary(model: keras.Model) -> list[str]:
    """One line per layer: name, type, output shape, parameters."""
    return [f"{layer.name} ({type(layer).__name__}) {tuple(layer.output.shape)} {layer.count_params():,}"
            for layer in model.layers]
