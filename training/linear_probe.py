"""The instant model: a linear head on frozen ImageNet features (Teachable Machine / Lobe style).

``efficientnet_lite0_linear`` is EfficientNet-Lite0 (Google's ImageNet weights, frozen) -> global average
pooling -> one Dense softmax layer. Training never back-propagates through the backbone:

1. every picture's pooled backbone features (and those of its mirror image, the augmentation) are computed
   once and kept in a :class:`FeatureCache` next to the decode cache, keyed by the decoded picture's bytes
   (that is, by file content and input size) and by the backbone's weights; a retrain after adding ten
   pictures computes ten pictures' features;
2. the head is a softmax regression with weight decay (scikit-learn's multinomial ``LogisticRegression``,
   L2) on standardised features, fitted in well under a second; the standardisation is folded into the
   Dense layer's weights, so the Keras model is the whole classifier;
3. the rest is the ordinary path (:func:`training.train.train` -> :func:`training.export.export_run`): one
   contract-v3 ONNX graph (backbone + head, same ``0..255`` input), calibrated, with the kNN open-set score
   (its bank read from the feature cache) and CAM. No test-time flip: mirrored features only augment the
   training set; on the 3-class benchmark folder flip TTA changed one test picture of 150 and doubles the
   apps' inference and the export's time.

``test_linear`` is the same recipe on a tiny random-init CNN (timm's ``test_*`` models are the precedent):
for tests and smoke runs, no download, seconds.

The fine-tune (``efficientnet_lite0_transfer``) stays the way to the final model; see README for where it
overtakes the instant model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from cifar10.filelock import FileLock
from training.blocks import classifier_head, model_input
from training.registry import register_model

FEATURES_LAYER = "avg_pool"
HEAD_LAYER = "probabilities"
FEATURE_CACHE_VERSION = 1
DEFAULT_C = 1.0  # inverse L2 strength of the head on standardised features (scikit-learn's default)
BATCH = 64


# --- the models ----------------------------------------------------------------------------------------

def _frozen_head(inputs, features, name: str, num_classes: int) -> keras.Model:
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(features)
    return classifier_head(inputs, x, name, num_classes)


def fit_linear_model(model, data, settings, callbacks=None, verbose: int = 2) -> dict:
    """The registry's ``fit`` recipe for linear models: cached features, then the fitted head."""
    return fit_head(model, data, settings, callbacks=callbacks, verbose=verbose)


@register_model("efficientnet_lite0_linear",
                summary="Instant model: EfficientNet-Lite0 (ImageNet weights) frozen, pooled features cached per "
                "picture (with its mirror image), a linear softmax head with weight decay fitted in seconds; "
                "folder data at 128 px",
                fit=fit_linear_model, pretrained=True, epochs=1, batch_size=BATCH, tta="none", image_size=128)
def efficientnet_lite0_linear(weights: str | None = "imagenet", num_classes: int = 10, image_size: int = 128,
                              resolution: int | None = None) -> keras.Model:
    """Raw RGB 0..255 ``[N, image_size, image_size, 3]`` in, ``num_classes`` probabilities out; the backbone is
    not trainable (its BatchNorm statistics and weights stay ImageNet's)."""
    from training.efficientnet_lite import imagenet_backbone

    inputs, x, base = imagenet_backbone(weights, image_size, resolution)
    base.trainable = False
    return _frozen_head(inputs, base(x, training=False), "efficientnet_lite0_linear", num_classes)


def _tiny_cnn(inputs, trainable: bool):
    """The tests' tiny backbone: two seeded random convolutions (the same weights in every model built)."""
    x = layers.Rescaling(1 / 128.0, offset=-1.0, name="scale")(inputs)
    for i, width in enumerate((8, 16)):
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", name=f"conv{i}",
                          trainable=trainable, kernel_initializer=keras.initializers.HeNormal(seed=i))(x)
    return x


@register_model("test_linear",
                summary="Tiny random-init CNN frozen + the instant model's linear head: for tests and smoke runs",
                fit=fit_linear_model, epochs=1, batch_size=BATCH, tta="none", image_size=32)
def test_linear(num_classes: int = 10, image_size: int = 32) -> keras.Model:
    inputs = model_input(image_size)
    return _frozen_head(inputs, _tiny_cnn(inputs, trainable=False), "test_linear", num_classes)


@register_model("test_transfer",
                summary="test_linear's tiny CNN fine-tuned with efficientnet_lite0_transfer's head (GAP-Dropout.2-"
                "Dense): for tests of --init-head",
                epochs=1, batch_size=16, optimizer="adamw", lr=1e-3, tta="none", image_size=32)
def test_transfer(num_classes: int = 10, image_size: int = 32) -> keras.Model:
    inputs = model_input(image_size)
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(_tiny_cnn(inputs, trainable=True))
    x = layers.Dropout(0.2, name="top_dropout")(x)
    return classifier_head(inputs, x, "test_transfer", num_classes)


# --- features ----------------------------------------------------------------------------------------------

def feature_extractor(model: keras.Model) -> keras.Model:
    """The model from its input to the pooled features that the head reads."""
    return keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)


def backbone_identity(model: keras.Model) -> str:
    """A digest of the feature extractor: input size and every weight before the head (a different backbone,
    resolution or weight file gets different cached features)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{FEATURE_CACHE_VERSION}\0{model.name}\0{tuple(model.input_shape)}".encode())
    head = model.get_layer(HEAD_LAYER)
    head_ids = {id(w) for w in head.weights}
    for w in model.weights:
        if id(w) not in head_ids:
            h.update(w.path.encode())
            h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return h.hexdigest()


def picture_keys(images: np.ndarray) -> list[str]:
    """One key per decoded picture: a digest of its uint8 pixels at the model's input size."""
    return [hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).hexdigest() for img in images]


def default_feature_dir() -> Path:
    """``~/.cache/cifar10-studio/features`` (next to the decode cache's ``datasets``)."""
    from cifar10.image_cache import default_cache_dir

    return default_cache_dir().parent / "features"


FEATURE_CACHE_MB_ENV = "CIFAR10_FEATURE_CACHE_MB"
# 2 GiB: about 200,000 pictures of EfficientNet-Lite0 features (10 KiB each: 1280 float32 for the picture, as
# many for its mirror image).
DEFAULT_FEATURE_CACHE_MB = 2048
EVICT_TO = 0.9  # an eviction goes down to this fraction of the bound, so that the next stores need none


def feature_cache_bound() -> int:
    """The feature cache's size bound in bytes: ``$CIFAR10_FEATURE_CACHE_MB`` mebibytes, else 2 GiB."""
    value = os.environ.get(FEATURE_CACHE_MB_ENV, "").strip()
    try:
        return int(float(value) * 2**20) if value else DEFAULT_FEATURE_CACHE_MB * 2**20
    except ValueError:
        print(f"warning: ${FEATURE_CACHE_MB_ENV}={value!r} is not a number of MiB; the feature cache keeps "
              f"{DEFAULT_FEATURE_CACHE_MB} MiB", file=sys.stderr)
        return DEFAULT_FEATURE_CACHE_MB * 2**20


class FeatureCache:
    """Pooled features of pictures (plain and mirrored), stored per backbone identity, least recently used
    pictures dropped beyond a size bound.

    ``<dir>/<identity>/index.json`` (the rows' keys, when each was last used, the array's file name: the commit) +
    ``features-<token>.npy`` (float32 ``[M, 2, D]``). Adding rows writes a new array under a fresh name and then
    replaces the index atomically; an OS lock per folder keeps two writers apart. Lookups that miss are computed
    by :meth:`features` and stored; every lookup marks its pictures as used now, and a store that takes the whole
    cache (every identity under ``<dir>``) past ``max_bytes`` (default :func:`feature_cache_bound`) drops the
    least recently used pictures' rows down to ``EVICT_TO`` of it (:func:`evict`)."""

    def __init__(self, identity: str, root: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.root = Path(root or default_feature_dir())
        self.folder = self.root / identity
        self.max_bytes = feature_cache_bound() if max_bytes is None else int(max_bytes)
        self.computed = 0  # pictures whose features the last call computed
        self.reused = 0

    def features(self, model: keras.Model, images: np.ndarray, keys: list[str] | None = None,
                 progress=None) -> np.ndarray:
        """``float32 [N, 2, D]``: the pooled features of each picture and of its mirror image."""
        keys = keys if keys is not None else picture_keys(images)
        stored, array, _used, _file = _read_folder(self.folder)
        known = {k: i for i, k in enumerate(stored)}
        missing = [i for i, k in enumerate(keys) if k not in known]
        fresh = compute_features(model, images[missing] if missing else images[:0], progress=progress)
        self.computed, self.reused = len(missing), len(keys) - len(missing)
        dim = fresh.shape[-1] if missing else (array.shape[-1] if array is not None else 0)
        out = np.zeros((len(keys), 2, dim), np.float32)
        for j, i in enumerate(missing):
            out[i] = fresh[j]
        for i, k in enumerate(keys):
            if k in known:
                out[i] = array[known[k]]
        if keys:
            try:
                self._store(dict(zip((keys[i] for i in missing), fresh)), used=keys)
            except OSError as exc:  # a cache that cannot be written costs time next run, nothing else
                print(f"warning: the feature cache {self.folder} could not be written: {exc}", file=sys.stderr)
        return out

    def _store(self, new: dict[str, np.ndarray], used: list[str]) -> None:
        """Add the rows ``new``, mark them and the pictures ``used`` as used now; then keep the cache bounded."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _locked(self.folder) as locked:
            if not locked:
                return
            keys, array, stamps, name = _read_folder(self.folder)
            now, used = _now(), set(used) | set(new)
            have = set(keys)
            add = [k for k in new if k not in have]
            if add:
                rows = [np.asarray(array)] if array is not None and len(keys) else []
                name = _write_array(self.folder, np.concatenate(rows + [np.stack([new[k] for k in add])]))
            elif name is None:
                return
            _write_index(self.folder, name, keys + add, [now if k in used else t for k, t in zip(keys, stamps)]
                         + [now] * len(add))
        if add:
            evict(self.root, self.max_bytes)


def evict(root: str | os.PathLike, max_bytes: int) -> int:
    """When the feature cache under ``root`` (every backbone's folder) takes more than ``max_bytes``, drop the
    least recently used pictures' rows until it takes at most ``EVICT_TO`` of that. Returns the rows dropped."""
    try:
        folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    except OSError:
        return 0
    total, rows = 0, []
    for folder in folders:
        keys, array, stamps, _name = _read_folder(folder)
        total += sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        if keys:
            size = array.nbytes // len(keys)
            rows += [(t, folder.name, k, size) for k, t in zip(keys, stamps)]
    if total <= max_bytes:
        return 0
    drop: dict[str, dict[str, float]] = {}
    for stamp, folder, key, size in sorted(rows):  # least recently used first
        if total <= max_bytes * EVICT_TO:
            break
        drop.setdefault(folder, {})[key] = stamp
        total -= size
    return sum(_drop_rows(Path(root) / folder, chosen) for folder, chosen in drop.items())


def _drop_rows(folder: Path, chosen: dict[str, float]) -> int:
    """Remove the rows of ``chosen`` (key -> its last use when it was chosen; a row used again since stays)."""
    with _locked(folder) as locked:
        if not locked:
            return 0
        keys, array, stamps, _name = _read_folder(folder)
        keep = [i for i, (k, t) in enumerate(zip(keys, stamps)) if chosen.get(k) != t]
        if len(keep) == len(keys):
            return 0
        if keep:
            _write_index(folder, _write_array(folder, np.asarray(array)[keep]), [keys[i] for i in keep],
                         [stamps[i] for i in keep])
        else:
            (folder / "index.json").unlink(missing_ok=True)
            for old in folder.glob("features-*.npy"):
                old.unlink(missing_ok=True)
        return len(keys) - len(keep)


def _read_folder(folder: Path) -> tuple[list[str], np.ndarray | None, list[float], str | None]:
    """(keys, the memory-mapped array, when each row was last used, the array's file name) of one backbone's
    folder; nothing for a missing or unreadable one. Rows stored before the cache had a bound count as oldest."""
    try:
        index = json.loads((folder / "index.json").read_text())
        array = np.load(folder / index["file"], mmap_mode="r")
        keys = list(index["keys"])
        stamps = [float(t) for t in index.get("used") or [0.0] * len(keys)]
        if index.get("version") != FEATURE_CACHE_VERSION or not len(array) == len(keys) == len(stamps):
            return [], None, [], None
        return keys, array, stamps, index["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return [], None, [], None


def _write_array(folder: Path, array: np.ndarray) -> str:
    name = f"features-{secrets.token_hex(6)}.npy"
    partial = folder / (name + ".part")
    try:
        with open(partial, "wb") as f:
            np.save(f, array.astype(np.float32))
        os.replace(partial, folder / name)
    except BaseException:  # a full disk, Ctrl+C, a cancelled Check Labels (SIGTERM): no half-written file stays
        partial.unlink(missing_ok=True)
        raise
    return name


def _write_index(folder: Path, name: str, keys: list[str], stamps: list[float]) -> None:
    """Commit: the index names the array ``name`` (older arrays are removed after)."""
    tmp = folder / "index.json.part"
    tmp.write_text(json.dumps({"version": FEATURE_CACHE_VERSION, "file": name, "keys": keys, "used": stamps}))
    os.replace(tmp, folder / "index.json")
    for old in folder.glob("features-*.npy"):
        if old.name != name:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold ``folder``'s lock (waiting up to a minute for another process); yields False when it never came."""
    lock = FileLock(folder / ".lock")
    for _ in range(600):
        try:
            lock.acquire()
            break
        except OSError:
            time.sleep(0.1)
    else:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


_last_use = [0.0]


def _now() -> float:
    """Seconds since the epoch, strictly increasing within this process (two lookups never tie)."""
    _last_use[0] = max(time.time(), _last_use[0] + 1e-6)
    return _last_use[0]


def compute_features(model: keras.Model, images: np.ndarray, progress=None) -> np.ndarray:
    """``float32 [N, 2, D]`` pooled features of ``images`` (uint8 or float 0..255) and their mirror images
    (a traced tf.function: 2.8x faster than eager calls on 128 px EfficientNet-Lite0 batches)."""
    import tensorflow as tf

    extractor = feature_extractor(model)
    traced = tf.function(lambda v: extractor(v, training=False), reduce_retracing=True)
    out = []
    for start in range(0, len(images), BATCH):
        batch = np.asarray(images[start:start + BATCH], np.float32)
        both = np.concatenate([batch, batch[:, :, ::-1]])
        f = traced(tf.constant(both)).numpy()
        out.append(np.stack([f[:len(batch)], f[len(batch):]], axis=1))
        if progress is not None:
            progress(min(start + BATCH, len(images)), len(images))
    if not out:
        return np.zeros((0, 2, int(extractor.output_shape[-1])), np.float32)
    return np.concatenate(out).astype(np.float32)


def cached_bank(spec, model: keras.Model, train_images: np.ndarray) -> np.ndarray | None:
    """The kNN open-set score's bank for a linear model, from the feature cache (the un-mirrored pooled
    features of :func:`training.calibration.bank_indices`' training pictures: what the exported graph's
    penultimate layer computes, without running it again); None for other models."""
    if spec.fit is not fit_linear_model or not len(train_images):
        return None
    from training.calibration import bank_indices, normalise

    rows = bank_indices(len(train_images))
    return normalise(cached_features(model, np.asarray(train_images[rows]))[:, 0])


def cached_features(model: keras.Model, images: np.ndarray, cache: FeatureCache | None = None) -> np.ndarray:
    cache = cache or FeatureCache(backbone_identity(model))
    return cache.features(model, images)


# --- the head ----------------------------------------------------------------------------------------------

def fit_softmax(features: np.ndarray, labels: np.ndarray, num_classes: int, c: float = DEFAULT_C,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel [D, C], bias [C])`` of a multinomial L2 logistic regression on ``features`` ``[N, D]``, with
    the standardisation folded in: ``softmax(features @ kernel + bias)`` are its probabilities. A class with
    no example gets a very negative bias."""
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(0)
    std = features.std(0) + 1e-6
    present = np.unique(labels)
    kernel = np.zeros((features.shape[1], num_classes), np.float32)
    bias = np.full(num_classes, -30.0, np.float32)
    if len(present) == 1:
        bias[present[0]] = 0.0
        return kernel, bias
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit((features - mean) / std, labels)
    coef, intercept = clf.coef_, clf.intercept_
    if len(present) == 2:  # scikit-learn's binary form: one logit z for the second class; softmax([-z/2, z/2])
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    w = (coef / std).T  # [D, k]
    b = intercept - (coef * (mean / std)).sum(1)
    kernel[:, clf.classes_] = w
    bias[clf.classes_] = b
    return kernel, bias


def set_head(model: keras.Model, kernel: np.ndarray, bias: np.ndarray) -> None:
    model.get_layer(HEAD_LAYER).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])


def head_probabilities(features: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    z = features @ kernel + bias
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def flip_tta(features: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What the exported graph's "flip" TTA computes: the mean of the picture's and its mirror's probabilities."""
    return (head_probabilities(features[:, 0], kernel, bias) + head_probabilities(features[:, 1], kernel, bias)) / 2


def fit_head(model: keras.Model, data, settings, callbacks=None, verbose: int = 2) -> dict:
    """Fit the head of a linear model in place on ``data.train`` (plain + mirrored features); one "epoch" for
    the callbacks (progress, CSV log). Returns a Keras-style history."""
    callbacks = keras.callbacks.CallbackList(list(callbacks or []), model=model)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    started = time.perf_counter()
    cache = FeatureCache(backbone_identity(model))
    train_f = cache.features(model, data.train.x)
    computed, reused = cache.computed, cache.reused
    val_f = cache.features(model, data.val.x) if len(data.val) else None
    computed, reused = computed + cache.computed, reused + cache.reused
    features_s = time.perf_counter() - started
    num_classes = int(model.output_shape[-1])
    y = np.asarray(data.train.y).astype(int)
    fit_started = time.perf_counter()
    kernel, bias = fit_softmax(np.concatenate([train_f[:, 0], train_f[:, 1]]), np.concatenate([y, y]), num_classes,
                               seed=settings.seed)
    fit_s = time.perf_counter() - fit_started
    set_head(model, kernel, bias)
    p = flip_tta(train_f, kernel, bias)
    logs = {"accuracy": float((p.argmax(1) == y).mean()),
            "loss": float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())}
    if val_f is not None:
        vy = np.asarray(data.val.y).astype(int)
        pv = flip_tta(val_f, kernel, bias)
        logs["val_accuracy"] = float((pv.argmax(1) == vy).mean())
        logs["val_loss"] = float(-np.log(pv[np.arange(len(vy)), vy] + 1e-12).mean())
    # stderr is the human log in every mode (--progress json included)
    print(f"Features: {computed} picture{'s' * (computed != 1)} computed, {reused} from the cache "
          f"({features_s:.1f} s); head fitted in {fit_s:.2f} s", file=sys.stderr, flush=True)
    callbacks.on_epoch_end(0, dict(logs))
    callbacks.on_train_end(dict(logs))
    return {key: [value] for key, value in logs.items()} | {
        "features_computed": [computed], "features_reused": [reused],
        "features_s": [round(features_s, 2)], "head_fit_s": [round(fit_s, 3)]}


# --- the instant model's head as the fine-tune's starting point (`cifar10 train --init-head RUN_DIR`) ------------

def init_head_from_run(model: keras.Model, run_dir, class_names) -> str:
    """Start ``model``'s Dense head (``probabilities`` on the pooled features ``avg_pool``: the fine-tuned
    ``efficientnet_lite0_transfer``, ``test_transfer``) from the folded kernel and bias of the linear head of the
    finished instant-model run ``run_dir``, so that before its first step the fine-tune predicts what the instant
    model predicts (Dropout is off at inference). Refused, with a one-line :class:`UserFacingError`, unless the
    classes and their order and the input size agree (:func:`cifar10.run_folders.head_mismatch`), the feature
    width agrees and every weight before the head is the same (the head was fitted on these very features: same
    backbone, same ``--weights``). Returns the line for the log.

    Why the run folder and not the exported model (``<dataset>-instant.onnx``): the run folder holds the head
    exactly as fitted, float32 in a Keras file under its layer name, next to a run.json with the class names,
    the input size and the absolute data folder (what the app matches an instant model to its dataset by).
    The exported file is tf2onnx's graph, int8-quantized for own-class data, with the calibration and kNN
    outputs around the head, and its card's paths are made portable, so finding the head and the data folder
    there would mean parsing a graph whose layout belongs to other tools."""
    from cifar10.errors import UserFacingError
    from cifar10.run_folders import head_mismatch, is_finished, read_record
    from training.registry import get_spec

    def refuse(why: str):
        raise UserFacingError(f"--init-head {run_dir}: {why}")

    record = read_record(run_dir)
    if record is None:
        refuse("no run.json there (not a training run folder)")
    if not is_finished(record):
        refuse("that run is unfinished")
    try:
        linear = get_spec(record.get("model", "")).fit is fit_linear_model
    except KeyError:
        linear = False
    if not linear:
        refuse(f"that run trained {record.get('model')!r}, not an instant (linear) model")
    names = [layer.name for layer in model.layers]
    if FEATURES_LAYER not in names or HEAD_LAYER not in names:
        refuse(f"{model.name} has no Dense head on pooled features to start")
    why = head_mismatch(record, class_names, int(model.input_shape[1]))
    if why:
        refuse(why)
    source = keras.models.load_model(Path(run_dir) / record.get("checkpoint", "final.keras"), compile=False)
    kernel, bias = source.get_layer(HEAD_LAYER).get_weights()
    width = int(model.get_layer(HEAD_LAYER).kernel.shape[0])
    if kernel.shape != (width, len(class_names)):
        refuse(f"its head reads {kernel.shape[0]} features, {model.name}'s {width}")
    for layer in source.layers:
        if layer.name == HEAD_LAYER or not layer.weights:
            continue
        ours = model.get_layer(layer.name).get_weights() if layer.name in names else None
        if ours is None or len(ours) != len(layer.weights) or not all(
                np.array_equal(a, b) for a, b in zip(layer.get_weights(), ours)):
            refuse(f"its backbone ({layer.name}) is not {model.name}'s: the head was fitted on other features "
                   "(another --weights?)")
    set_head(model, kernel, bias)
    return f"Head: started from the instant model's linear head ({record['model']}, {Path(run_dir).name})"


# --- out-of-fold predictions (label issues) ---------------------------------------------------------------

def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int = 5,
                              seed: int = 0) -> np.ndarray:
    """``[N, C]`` probabilities of each picture from a head that never saw it (stratified k-fold), each
    averaged over the picture and its mirror image; ``features`` ``[N, 2, D]``."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels).astype(int)
    counts = np.bincount(labels, minlength=num_classes)
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    out = np.zeros((len(labels), num_classes), np.float64)
    for train_idx, held_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels):
        f = features[train_idx]
        y = labels[train_idx]
        kernel, bias = fit_softmax(np.concatenate([f[:, 0], f[:, 1]]), np.concatenate([y, y]), num_classes, seed=seed)
        out[held_idx] = flip_tta(features[held_idx], kernel, bias)
    return out
