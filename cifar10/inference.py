"""Run an exported model on images: the inference core shared by the CLI, the desktop app and the web apps.

Only numpy, Pillow and onnxruntime are used (never TensorFlow).

>>> from cifar10.inference import Classifier, classify_files
>>> clf = Classifier(model_info_or_path)             # provider="auto": CUDA if onnxruntime has it
>>> for result in classify_files(clf, ["photos/"]):  # folders are scanned recursively
...     print(result.path, result.label, result.confidence, result.error)

``classify_files`` streams: it decodes ``batch_size`` files at a time on a thread pool (Pillow
releases the GIL while decoding and resizing), runs one batched inference per chunk, and yields
the results in input order. At most two chunks of model-sized images (32x32 for CIFAR-10 models) are in
memory at once, whatever the number of files; a broken file gives a :class:`Result` with ``error`` set and the
rest go on. Every image is decoded at the model's own input size, and results carry the model's class names.
"""

from __future__ import annotations

import os
import stat
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from typing import Callable, Iterable, Iterator

import numpy as np

from cifar10 import contract
from cifar10.options import PROVIDER_CHOICES, PROVIDERS
from cifar10.preprocess import ImageError, ImageSource, load_image
from cifar10.registry import ModelError, ModelInfo, load_model_info
from cifar10.results import NONFINITE_ERROR, Result  # noqa: F401 (re-exported for callers of this module)

DEFAULT_BATCH_SIZE = 256

# Files a folder scan skips: OS metadata that is never an image a user meant to classify.
SKIPPED_FILE_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db"})
# Metadata sidecars (``photo.jpg.xmp``, written by ``cifar10 classify --xmp``, digiKam, darktable...): never images.
SKIPPED_SUFFIXES = (".xmp",)


class ProviderError(RuntimeError):
    """The requested execution provider is not available; the message says what is."""


def available_providers() -> list[str]:
    """onnxruntime's execution providers on this machine, e.g. ``['CUDAExecutionProvider', 'CPUExecutionProvider']``."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


class Classifier:
    """One onnxruntime session for one model. ``predict`` is thread-safe (onnxruntime's ``run`` is)."""

    def __init__(self, model: ModelInfo | str | os.PathLike, provider: str = "auto", *,
                 threads: int | None = None):
        import onnxruntime as ort

        self.model: ModelInfo = model if isinstance(model, ModelInfo) else load_model_info(model)
        provider = (provider or "auto").lower()
        if provider not in PROVIDER_CHOICES:
            raise ProviderError(f"unknown provider '{provider}': use {', '.join(PROVIDER_CHOICES)}")
        available = available_providers()
        if provider == "cuda" and PROVIDERS["cuda"] not in available:
            raise ProviderError("CUDA was requested but this onnxruntime has no CUDAExecutionProvider "
                                f"(available: {', '.join(available)}). Install onnxruntime-gpu with a "
                                "matching CUDA/cuDNN, or use --provider cpu.")
        if provider == "cpu" or (provider == "auto" and PROVIDERS["cuda"] not in available):
            wanted = [PROVIDERS["cpu"]]
        else:
            wanted = [PROVIDERS["cuda"], PROVIDERS["cpu"]]

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; CUDA fallback warnings are reported below instead
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(self.model.onnx_path), options, providers=wanted)
        in_use = self._session.get_providers()
        if provider == "cuda" and PROVIDERS["cuda"] not in in_use:
            raise ProviderError("CUDA was requested but onnxruntime could not start it (CUDA or cuDNN "
                                "libraries missing or mismatched); use --provider cpu.")
        self.provider_name: str = in_use[0]
        # Contract v2's optional outputs (a v1 model has none of them: never "unsure", no CAM).
        present = {o.name for o in self._session.get_outputs()}
        self.outputs: tuple[str, ...] = (contract.OUTPUT_NAME,) + tuple(
            name for name in contract.OPTIONAL_OUTPUTS if name in present)
        self.threshold: float | None = (contract.open_set_threshold(self.model.card)
                                        if contract.OOD_SCORE_NAME in present else None)
        self.has_cam: bool = contract.CAM_NAME in present
        self.provider: str = next((short for short, full in PROVIDERS.items() if full == in_use[0]), in_use[0])
        # What the model knows (contract v3): its input size and the class names apps show.
        self.image_size: int = self.model.image_size
        self.labels: tuple[str, ...] = self.model.labels
        self._probe()

    def _probe(self) -> None:
        """Run the model once on two blank images and check the real output shapes against the contract (a
        graph can declare one shape and compute another); :class:`ModelError` in one line if they differ."""
        n, classes = 2, len(self.labels)
        feed = np.zeros((n, self.image_size, self.image_size, 3), np.float32)
        try:
            got = self._session.run(list(self.outputs), {contract.INPUT_NAME: feed})
        except Exception as exc:  # onnxruntime's own error types
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.model.onnx_path}: the model fails on a test batch of {n} images "
                             f"({text[:200]}); it is refused") from None
        for name, value in zip(self.outputs, got):
            shape = tuple(np.shape(value))
            want = {contract.OUTPUT_NAME: (n, classes), contract.LOGITS_NAME: (n, classes),
                    contract.OOD_SCORE_NAME: (n,)}.get(name)
            ok = (shape == want) if want is not None else (len(shape) == 4 and shape[0] == n and shape[3] == classes)
            if not ok:
                expected = list(want) if want is not None else f"[{n}, h, w, {classes}]"
                raise ModelError(f"{self.model.onnx_path}: output '{name}' really has shape {list(shape)} for "
                                 f"{n} images, the contract says {expected}; the model is refused")

    def __repr__(self) -> str:
        return f"Classifier({self.model.name!r}, provider={self.provider!r})"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, C]`` (float32) for a uint8 or float32 NHWC batch ``[N, S, S, 3]`` of raw RGB."""
        return self.predict_all(batch, with_cam=False).probabilities

    def predict_all(self, batch: np.ndarray, *, with_cam: bool = False) -> "Outputs":
        """Every contract output for a batch: probabilities, and (contract v2) logits, ood_score, the
        unsure flags at the card's threshold, and class activation maps when ``with_cam`` and the model has them."""
        batch = np.asarray(batch)
        if batch.ndim == 3:
            batch = batch[None]
        expected = (self.image_size, self.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(f"expected a batch of shape [N, {self.image_size}, {self.image_size}, 3], "
                             f"got {list(batch.shape)}")
        if batch.dtype not in (np.uint8, np.float32):
            raise ValueError(f"expected uint8 (0..255) or float32 raw RGB, got {batch.dtype}")
        names = [n for n in self.outputs if with_cam or n != contract.CAM_NAME]
        if len(batch) == 0:
            return Outputs(np.zeros((0, len(self.labels)), np.float32), threshold=self.threshold)
        feed = np.ascontiguousarray(batch, dtype=np.float32)
        got = dict(zip(names, self._session.run(names, {contract.INPUT_NAME: feed})))
        as32 = {k: np.asarray(v, dtype=np.float32) for k, v in got.items()}
        return Outputs(as32[contract.OUTPUT_NAME], as32.get(contract.LOGITS_NAME),
                       as32.get(contract.OOD_SCORE_NAME), as32.get(contract.CAM_NAME), self.threshold)

    def predict_image(self, source: ImageSource) -> np.ndarray:
        """Probabilities ``[C]`` for one image file/bytes (raises :class:`ImageError`)."""
        return self.predict(self.load(source)[None])[0]

    def load(self, source: ImageSource) -> np.ndarray:
        """The model's input for one image: :func:`load_image` at this model's size (raises :class:`ImageError`)."""
        return load_image(source, self.image_size)

    def result(self, path: str, probabilities: np.ndarray, image: np.ndarray | None = None, *,
               ood_score: float = float("nan"), unsure: bool = False) -> Result:
        """A :class:`Result` in this model's classes (an error row when the model returned NaN or inf)."""
        if contract.OOD_SCORE_NAME in self.outputs and not np.isfinite(ood_score):
            return Result(path, error=NONFINITE_ERROR, classes=self.labels)
        return Result.from_probabilities(path, probabilities, image, ood_score=ood_score, unsure=unsure,
                                         classes=self.labels)


@dataclass
class Outputs:
    """One batch's model outputs. ``ood_score`` is all-NaN and ``unsure`` all-False for a v1 model."""
    probabilities: np.ndarray                  # [N, C] (calibrated for a v2/v3 model)
    logits: np.ndarray | None = None           # [N, C] or None (v1)
    ood_score: np.ndarray | None = None        # [N]; NaN where the model has no score
    cam: np.ndarray | None = None              # [N, h, w, C] or None
    threshold: float | None = None             # the card's open-set threshold

    def __post_init__(self):
        if self.ood_score is None:
            self.ood_score = np.full(len(self.probabilities), np.nan, np.float32)

    @property
    def unsure(self) -> np.ndarray:
        """[N] bool: the "may be none of the classes" flag (ood_score above the model's threshold)."""
        return np.array([contract.is_unsure(float(s), self.threshold) for s in self.ood_score], dtype=bool)


def iter_image_files(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Expand files and folders (recursively, sorted) into file paths, each once, in a stable order.

    Every regular file in a folder is yielded, image or not (non-images become error rows), except
    hidden ones (name starting with "." or the Windows hidden attribute), hidden folders, and OS
    metadata such as Thumbs.db and ``.xmp`` sidecars: nobody drops a folder to classify its ``.DS_Store``. A path given
    explicitly is always yielded, even if hidden or missing (it then gets an error row).
    Symlinked folders are not followed (no cycles); symlinked files are.
    """
    seen: set[str] = set()

    def once(path: str) -> bool:
        key = os.path.normcase(os.path.abspath(path))
        if key in seen:
            return False
        seen.add(key)
        return True

    for given in paths:
        given = os.fspath(given)
        if os.path.isdir(given):
            for path in _walk(given):
                if once(path):
                    yield path
        elif once(given):
            yield given


def _is_hidden(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return True
    if sys.platform == "win32":
        try:
            return bool(entry.stat(follow_symlinks=False).st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)
        except (OSError, AttributeError):
            return False
    return False


def _walk(folder: str) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return  # unreadable folder: nothing to list (the folder itself is not a file row)
    for entry in entries:
        if _is_hidden(entry):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path)
            elif (entry.is_file() and entry.name.lower() not in SKIPPED_FILE_NAMES
                  and not entry.name.lower().endswith(SKIPPED_SUFFIXES)):
                yield entry.path
        except OSError:
            continue


def not_a_regular_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` must not be opened (a FIFO would block forever, a device never ends), or None for a regular
    file (or one that is not there: opening it gives the usual error). Only stat()s it, never opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    return f"not read: {kind}, not an image file"


def looks_like_image(path: str | os.PathLike) -> bool:
    """Whether a file could be an image: a regular file with an image suffix Pillow knows, or whose header Pillow
    recognises (reads a few bytes; never decodes). For "no images found" before any work starts."""
    if not_a_regular_file(path) or not os.path.isfile(path):
        return False
    from PIL import Image

    Image.init()
    if os.path.splitext(os.fspath(path))[1].lower() in Image.registered_extensions():
        return True
    try:
        with Image.open(path):
            return True
    except Exception:
        return False


def _decode_one(path: str, stop: Callable[[], bool] | None, size: int) -> np.ndarray | str | None:
    if stop is not None and stop():
        return None
    refused = not_a_regular_file(path)
    if refused:
        return refused
    try:
        return load_image(path, size)
    except ImageError as exc:
        return exc.reason  # the row shows the path already
    except Exception as exc:  # belt and braces: one odd file must never end a 10,000-file run
        return f"unexpected error decoding {path}: {type(exc).__name__}: {exc}"


def iter_result_batches(classifier: Classifier, paths: Iterable[str | os.PathLike], batch_size: int = DEFAULT_BATCH_SIZE,
                        on_progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None, *, keep_images: bool = False,
                        workers: int | None = None) -> Iterator[list[Result]]:
    """Like :func:`classify_files` but yields one list of results per batch (GUIs append these in one go)."""
    files = list(iter_image_files(paths))  # the paths only (small); images are decoded per batch
    total = len(files)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    workers = workers or min(8, (os.cpu_count() or 2))
    done = 0
    if on_progress is not None:
        on_progress(0, total)
    if total == 0:
        return
    chunks = [files[i:i + batch_size] for i in range(0, total, batch_size)]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cifar10-decode")
    try:
        def submit(chunk: list[str]) -> list[Future]:
            return [pool.submit(_decode_one, path, should_stop, classifier.image_size) for path in chunk]

        pending = submit(chunks[0])
        for index, chunk in enumerate(chunks):
            decoded = [f.result() for f in pending]
            # Decode the next chunk while this one is being classified (two chunks in memory at most).
            pending = submit(chunks[index + 1]) if index + 1 < len(chunks) else []
            if should_stop is not None and should_stop():
                return
            good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
            outputs = classifier.predict_all(np.stack([decoded[i] for i in good])) if good else None
            flags = outputs.unsure if outputs is not None else None
            results: list[Result] = []
            row = {i: n for n, i in enumerate(good)}
            for i, path in enumerate(chunk):
                item = decoded[i]
                if isinstance(item, np.ndarray):
                    n = row[i]
                    results.append(classifier.result(path, outputs.probabilities[n], item if keep_images else None,
                                                     ood_score=float(outputs.ood_score[n]), unsure=bool(flags[n])))
                else:
                    results.append(Result(path, error=item or "cancelled", classes=classifier.labels))
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
            yield results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def classify_files(classifier: Classifier, paths: Iterable[str | os.PathLike], batch_size: int = DEFAULT_BATCH_SIZE,
                   on_progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, *, keep_images: bool = False,
                   workers: int | None = None) -> Iterator[Result]:
    """Classify files and folders (scanned recursively), yielding one :class:`Result` per file, in order.

    ``on_progress(done, total)`` is called after each batch (and once with ``done=0``);
    ``should_stop()`` is polled before each file is decoded and before each batch is classified:
    when it returns True the generator ends early (results already yielded stay valid).
    ``keep_images`` puts the model input on each result (3 KB at 32x32; the desktop app's thumbnails).
    """
    for batch in iter_result_batches(classifier, paths, batch_size, on_progress, should_stop,
                                     keep_images=keep_images, workers=workers):
        yield from batch

