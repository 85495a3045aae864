"""Export a finished run to the ONNX contract (version 3: any class count C and input size S), measure it on
the test set, write its model card.

No model is replaced without being asked (``replace_model``; ``cifar10 train/export --replace``):
:func:`check_name_free` raises :class:`ModelExistsError` when the models folder has a ``<name>.onnx`` or
``<name>.json``; ``cifar10 train`` calls it before training and :func:`export_run` again before it writes.

No half-written model: everything is written into a hidden staging folder next to the target
(``.<name>.partial-*``, same file system), and only at the very end moved into the models folder with
``os.replace`` (:func:`move_into_place`): a model being replaced is first moved aside into the staging
folder (its ``.onnx`` first: the apps discover a model by its ``.onnx``), then the new card, then the new
``.onnx`` go in. At no moment does a ``.onnx`` sit next to another model's card; a failure puts the old
model back and removes the staging folder.
"""

from __future__ import annotations

import json
import os
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
from cifar10.contract import model_metadata
from cifar10.errors import UserFacingError
from cifar10.machine import machine
from cifar10.options import TTA_MODES
from cifar10.paths import portable_paths
from cifar10.metrics import classification_metrics
from training.data import load_training_data
from training.evaluate import onnx_probabilities
from training.models import get_spec
from training.plots import plot_confusion
from training.settings import TrainSettings, safe_name

OPSET = 17
PARITY_IMAGES = 1000
CIFAR10 = contract.CIFAR10_DATASET


def input_spec(model: keras.Model) -> tuple:
    """The contract's input for this model: float32 [N, S, S, 3] named "image", S from the model."""
    size = int(model.input_shape[1])
    return (tf.TensorSpec([None, size, size, 3], tf.float32, name=contract.INPUT_NAME),)



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

    @tf.function(input_signature=input_spec(model))
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


def to_onnx(model: keras.Model, path: Path, name: str, tta: str = "none", *, class_names=None,
            display_names=None, dataset: str = CIFAR10) -> Path:
    """Convert with tf2onnx and stamp the contract-v3 metadata into the ONNX file (``probabilities`` only;
    :func:`calibrate_file` then adds the optional outputs). ``class_names``: the C output classes in order
    (default: CIFAR-10's ten, for a 10-class model)."""
    num_classes = int(model.output_shape[-1])
    if class_names is None:
        if num_classes != contract.NUM_CLASSES:
            raise ValueError(f"a {num_classes}-class model needs its class_names")
        class_names = contract.CLASS_NAMES
    if len(class_names) != num_classes or (display_names and len(display_names) != num_classes):
        raise ValueError(f"the model has {num_classes} outputs but {len(class_names)} class names"
                         + (f" and {len(display_names)} display names" if display_names else ""))
    proto, _ = tf2onnx.convert.from_function(serving_function(model, tta), input_signature=input_spec(model),
                                             opset=OPSET)
    meta = model_metadata(model_name=name, class_names=list(class_names),
                          display_names=list(display_names) if display_names else None, dataset=dataset)
    for key, value in meta.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    proto.producer_name = "cifar10-studio (tf2onnx)"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".onnx.part")
    onnx.save(proto, partial)
    partial.replace(path)
    return path


def calibrate_file(onnx_path: Path, data, bank=None) -> dict:
    """Contract v2 in place: temperature, logits, open-set score (+ CAM when the head allows), fitted on the
    validation split; a model trained on every training image (no validation split) is cross-fitted on the
    two halves of the test set instead (docs/trust.md). Returns the card's ``calibration`` / ``open_set``."""
    from training.calibration import upgrade

    if len(data.val):
        images, labels, crossfit = data.val.x, data.val.y, False
        source = (f"the validation split: the last {len(data.val):,} training images, never trained on"
                  if getattr(data, "name", CIFAR10) == CIFAR10 else
                  f"the validation split: {len(data.val):,} images held out from training, never trained on")
    else:
        images, labels, crossfit = data.test.x, data.test.y, True
        source = (f"the {len(data.test):,} test images, cross-fitted on their two halves (no held-out training "
                  "images: the model trained on all of them)")
    upgraded, card = upgrade(onnx.load(onnx_path), images, labels, source=source, crossfit=crossfit,
                             train_images=data.train.x, bank=bank)
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


def library_versions() -> dict:
    import onnxruntime
    import sklearn
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__}


def load_run_data(record: dict, data_dir=None):
    """The data a finished run trained on, split the same way (same folder, size and seed; or CIFAR-10 with
    the same validation rows)."""
    return load_training_data(TrainSettings.from_record(record), data_dir)


class ModelExistsError(UserFacingError):
    """The models folder already has a model of that name, and replacing it was not asked for."""


def model_files(export_dir: Path, name: str) -> list[Path]:
    """The files of model ``name`` in ``export_dir`` that exist: its ``.onnx`` and its card (``.json``)."""
    return [path for path in (Path(export_dir) / f"{name}.onnx", Path(export_dir) / f"{name}.json") if path.exists()]


def check_name_free(export_dir: Path, name: str, *, other: str = "--name NEW") -> None:
    """Raise :class:`ModelExistsError` when ``export_dir`` already has a model called ``name``; the message
    offers --replace, or ``other`` (the command's way to another name or folder)."""
    if model_files(export_dir, name):
        raise ModelExistsError(f"a model named {name} already exists in {export_dir}: pass --replace to replace "
                               f"it, or {other}")


def move_into_place(staging: Path, export_dir: Path, name: str) -> Path:
    """Move ``staging/<name>.onnx`` + ``.json`` (+ plots) into ``export_dir`` with ``os.replace`` (atomic
    on one file system). A model of that name already there is moved aside into ``staging`` first (its
    ``.onnx``, then its card) and is put back if anything fails; the caller removes ``staging``."""
    final = export_dir / f"{name}.onnx"
    card = final.with_suffix(".json")
    aside = staging / "replaced"
    aside.mkdir(exist_ok=True)
    moved_aside: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for old in (final, card):  # the old .onnx first: from now on the apps do not see a half pair
            if old.exists():
                os.replace(old, aside / old.name)
                moved_aside.append((aside / old.name, old))
        os.replace(staging / card.name, card)
        placed.append(card)
        os.replace(staging / final.name, final)
        placed.append(final)
    except BaseException:
        for path in reversed(placed):
            path.unlink(missing_ok=True)
        for saved, original in reversed(moved_aside):  # the old card, then its .onnx, back where they were
            os.replace(saved, original)
        raise
    for plot in ("curves.png", "confusion_matrix.png"):  # not part of the model: after it, each atomic
        if (staging / f"{name}.{plot}").exists():
            os.replace(staging / f"{name}.{plot}", export_dir / f"{name}.{plot}")
    return final


def put_back_replaced(staging: Path, export_dir: Path, name: str) -> None:
    """A killed export may have moved the model it was replacing aside (``staging/replaced``) without putting
    the new one in: that old model goes back (over a lone new card) when no ``.onnx`` took its place."""
    aside = staging / "replaced"
    if (aside / f"{name}.onnx").is_file() and not (export_dir / f"{name}.onnx").exists():
        if (aside / f"{name}.json").is_file():
            os.replace(aside / f"{name}.json", export_dir / f"{name}.json")
        os.replace(aside / f"{name}.onnx", export_dir / f"{name}.onnx")


def export_run(run_dir: Path, export_dir: Path, *, data=None, data_dir=None, tta: str | None = None,
               command: str | None = None, name: str | None = None, with_card: bool = False,
               replace_model: bool = False):
    """Export a run's best checkpoint as ``<export_dir>/<name>.onnx`` + ``<name>.json`` (+ plots); ``tta``
    overrides the test-time augmentation the run asked for; ``name`` the run's export name. An existing
    model of that name is replaced only with ``replace_model`` (else :class:`ModelExistsError`, checked
    before the export starts and again just before the files are moved into place).

    ``command``: the `cifar10 export` command line when the export is a separate step (kept in the card).
    Returns the .onnx path (and the card with ``with_card``)."""
    import tempfile

    run_dir = Path(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    if record.get("status", "finished") != "finished":  # training/checkpoint.py: a run still in progress
        raise UserFacingError(f"{run_dir}: that run is unfinished ({record.get('epochs_done', 0)} of "
                              f"{record.get('epochs', '?')} epochs): resume it with cifar10 train --resume {run_dir}")
    model_name = record["model"]
    name = safe_name(name or record.get("name") or model_name)
    export_dir = Path(export_dir)
    if not replace_model:
        check_name_free(export_dir, name)
    spec = get_spec(model_name)
    model = float32_copy(keras.models.load_model(run_dir / record.get("checkpoint", "best.keras")))
    if data is None:
        data = load_run_data(record, data_dir)
    class_names = tuple(getattr(data, "class_names", None) or contract.CLASS_NAMES)
    display_names = tuple(data.display_names) if getattr(data, "display_names", None) else None
    dataset = getattr(data, "name", None) or CIFAR10
    image_size = int(model.input_shape[1])

    export_dir.mkdir(parents=True, exist_ok=True)
    for stale in export_dir.glob(f".{name}.partial-*"):  # left by a killed export of the same name
        put_back_replaced(stale, export_dir, name)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=export_dir))
    try:
        tta = tta or record["settings"].get("tta", "none")
        onnx_path = to_onnx(model, staging / f"{name}.onnx", name, tta, class_names=class_names,
                            display_names=display_names, dataset=dataset)
        parity_figures = parity(model, onnx_path, data.test.x[:PARITY_IMAGES], tta)  # the plain graph vs Keras
        from training.linear_probe import cached_bank  # instant models: the kNN bank from the feature cache
        trust = calibrate_file(onnx_path, data, bank=cached_bank(spec, model, data.train.x))
        # The card's test figures come from the shipped artefact (the ONNX model), on the whole test set.
        metrics = classification_metrics(data.test.y, onnx_probabilities(onnx_path, data.test.x),
                                         class_names=tuple(class_names))
        shown = display_names or class_names
        plot_confusion(np.array(metrics["confusion_matrix"]), run_dir / "confusion_matrix.png", name,
                       class_names=shown)

        card = {
            "name": name,
            "model": model_name,
            "summary": spec.summary,
            "dataset": dataset,
            "class_names": list(class_names),
            **({"display_names": list(display_names)} if display_names else {}),
            "image_size": image_size,
            "test_accuracy": round(metrics["accuracy"], 4),
            "training_wall_time_s": record["training_wall_time_s"],
            "precision_macro": round(metrics["precision_macro"], 4),
            "recall_macro": round(metrics["recall_macro"], 4),
            "f1_macro": round(metrics["f1_macro"], 4),
            "ece": round(metrics["ece"], 4),
            **trust,
            "contract": onnx_contract_version(onnx_path),
            "parameters": int(model.count_params()),
            "architecture": architecture_summary(model),
            "training_command": record["command"],
            "export_command": command,
            "training": {k: record[k] for k in ("settings", "checkpoint", "epochs_run", "best_epoch",
                                                "best_val_accuracy", "continues", "resumed", "wall_time_s", "finished")
                         if k in record},
            "data": record["data"],
            "machine": machine(),
            "test_metrics": metrics,
            "onnx": {"file": f"{name}.onnx", "opset": OPSET, **onnx_shapes(onnx_path), "input_range": "0..255 RGB",
                     "test_time_augmentation": tta, "parity_vs_keras": parity_figures,
                     "outputs": onnx_outputs(onnx_path)},
            "study": spec.study,
            "libraries": library_versions(),
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (staging / f"{name}.json").write_text(json.dumps(portable_paths(card), indent=2, ensure_ascii=False) + "\n")
        for plot in ("curves.png", "confusion_matrix.png"):
            if (run_dir / plot).exists():
                shutil.copy(run_dir / plot, staging / f"{name}.{plot}")
        # The very end: into the models folder, unless a model of that name appeared meanwhile.
        if not replace_model:
            check_name_free(export_dir, name)
        final = move_into_place(staging, export_dir, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Exported {name}: test accuracy {metrics['accuracy']:.4f} (ONNX, {metrics['n']} images, {len(class_names)} "
          f"classes, {image_size} px); ONNX vs Keras: max probability difference {parity_figures['max_abs_diff']:.1e}, "
          f"same class for {parity_figures['argmax_agreement']:.1%} of {parity_figures['images']} images",
          file=sys.stderr)
    return (final, card) if with_card else final


def onnx_shapes(onnx_path: Path) -> dict:
    """The graph's true input and ``probabilities`` shapes (None for the batch dimension)."""
    graph = onnx.load(onnx_path, load_external_data=False).graph

    def dims(value):
        return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    output = next(o for o in graph.output if o.name == contract.OUTPUT_NAME)
    return {"input": dims(graph.input[0]), "output": dims(output)}


def onnx_contract_version(onnx_path: Path) -> str:
    meta = {p.key: p.value for p in onnx.load(onnx_path, load_external_data=False).metadata_props}
    return meta.get(contract.META_CONTRACT, "1")


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
