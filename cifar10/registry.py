"""Find the exported models and check each one against the ONNX contract before any app uses it.

A model is ``<name>.onnx`` + ``<name>.json`` (its card) in one of the model folders
(:func:`cifar10.paths.model_dirs`: the shipped ``exported_models/`` or ``$CIFAR10_MODELS_DIR``,
then the per-user folder). A model that breaks the contract is reported as one readable error
string and left out; discovery never raises for a bad model.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cifar10 import contract


# --- JSON from files anyone could have written (model cards, ONNX metadata; the classify journal too) -------
# A size limit, a nesting-depth limit checked *before* the recursive parser runs, and a digit limit on integers
# (Python refuses ints over 4,300 digits with a ValueError that is not a JSONDecodeError). Every problem is a
# JsonLimitError (a ValueError) whose text completes "the model card ...". Kept in this module (not its own)
# because the web Space export vendors registry.py with the other core modules.

JSON_MAX_BYTES = 1 << 20        # 1 MiB: a model card is a few KB
JSON_MAX_DEPTH = 32             # shipped cards nest 4 levels
JSON_MAX_INT_DIGITS = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonLimitError(ValueError):
    """The JSON is unreadable, too big, too deep or has an absurd number in it; str() says which."""


def _limited_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_MAX_INT_DIGITS:
        raise JsonLimitError(f"holds an integer of {len(text)} digits (more than {JSON_MAX_INT_DIGITS})")
    return int(text)


def nesting_depth(text: str, stop_above: int | None = None) -> int:
    """The deepest nesting of [ and { outside strings, without recursion (so any text is safe to measure);
    with ``stop_above``, the scan ends as soon as the depth passes it."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", _STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        else:
            depth -= 1
    return deepest


def json_loads_limited(text: str, *, max_depth: int = JSON_MAX_DEPTH, max_chars: int = JSON_MAX_BYTES):
    """``json.loads`` within the limits; :class:`JsonLimitError` for anything wrong (never RecursionError,
    MemoryError or the int-digits ValueError)."""
    if len(text) > max_chars:
        raise JsonLimitError(f"is {len(text):,} characters long (more than {max_chars:,})")
    try:
        depth = nesting_depth(text, stop_above=max_depth)
    except (RecursionError, MemoryError):  # the regex engine on pathological text
        raise JsonLimitError("cannot be scanned") from None
    if depth > max_depth:
        raise JsonLimitError(f"is nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_int=_limited_int)
    except JsonLimitError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (ValueError, RecursionError, MemoryError, TypeError) as exc:
        raise JsonLimitError(f"is not usable JSON ({type(exc).__name__}: {str(exc)[:120]})") from None


def json_load_file_limited(path: str | os.PathLike, *, max_bytes: int = JSON_MAX_BYTES,
                           max_depth: int = JSON_MAX_DEPTH):
    """Read and parse a JSON file within the limits. A file that is not a regular file (a FIFO, a device) is
    refused without being opened for reading data; OSError for a file that cannot be read at all."""
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise JsonLimitError("is not a regular file")
    if st.st_size > max_bytes:
        raise JsonLimitError(f"is {st.st_size:,} bytes (more than {max_bytes:,})")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JsonLimitError(f"is more than {max_bytes:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return json_loads_limited(text, max_depth=max_depth, max_chars=max_bytes)


class ModelError(ValueError):
    """A model file or its card breaks the contract; the message names the file and the problem."""


@dataclass
class ModelInfo:
    name: str
    onnx_path: Path
    card: dict = field(default_factory=dict)
    # What the model knows (contract v3; versions 1 and 2 are CIFAR-10 at 32 px), read from the graph.
    class_names: tuple[str, ...] = contract.CLASS_NAMES
    display_names: tuple[str, ...] | None = None
    image_size: int = contract.IMAGE_SIZE
    dataset: str = contract.CIFAR10_DATASET

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names as every app shows them (the display names when the model has them)."""
        return self.display_names or self.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def knows(self) -> str:
        """``CIFAR-10 · 10 classes``, ``my-pets · 3 classes``."""
        return contract.knows_text(self.dataset, self.num_classes)

    @property
    def test_accuracy(self) -> float | None:
        value = self.card.get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def summary(self) -> str:
        return str(self.card.get("summary") or "")

    @property
    def card_path(self) -> Path:
        return self.onnx_path.with_suffix(".json")

    @property
    def label(self) -> str:
        """``name — CIFAR-10 · 10 classes — 83.4 % test accuracy``: what pickers show."""
        acc = self.test_accuracy
        figure = f"{acc:.1%} test accuracy" if acc is not None else "accuracy unknown"
        return f"{self.name} — {self.knows} — {figure}"


def discover_models(dirs: Iterable[str | os.PathLike] | None = None) -> tuple[list[ModelInfo], list[str]]:
    """All valid models in ``dirs`` (default :func:`cifar10.paths.model_dirs`), best test accuracy first.

    Returns ``(models, errors)``; each error is a sentence naming the file and what is wrong.
    A name found in an earlier folder wins over the same name in a later one (reported as an error).
    Folders that do not exist are skipped silently (the user folder usually does not).
    """
    if dirs is None:
        from cifar10.paths import model_dirs

        dirs = model_dirs()
    models: list[ModelInfo] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for directory in dirs:
        directory = Path(directory)
        if not directory.is_dir():
            continue
        try:
            onnx_files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
        except OSError as exc:
            errors.append(f"{directory}: cannot list the models folder ({exc.strerror or exc})")
            continue
        for path in onnx_files:
            try:
                info = load_model_info(path)
            except ModelError as exc:
                errors.append(str(exc))
                continue
            except Exception as exc:  # belt and braces: one hostile model must never take the others down
                errors.append(f"{path}: this model is skipped: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if info.name in seen:
                errors.append(f"{path}: a model named '{info.name}' was already found in {seen[info.name]}; "
                              "this one is ignored")
                continue
            seen[info.name] = path
            models.append(info)
    models.sort(key=lambda m: (-(m.test_accuracy if m.test_accuracy is not None else -1.0), m.name))
    return models, errors


def best_model(models: list[ModelInfo]) -> ModelInfo | None:
    """The model with the highest card test accuracy (models without one come last)."""
    if not models:
        return None
    return min(models, key=lambda m: (-(m.test_accuracy if m.test_accuracy is not None else -1.0), m.name))


def find_model(name_or_path: str | os.PathLike, models: list[ModelInfo]) -> ModelInfo:
    """A discovered model by name, or any ``.onnx`` file by path (validated). Raises :class:`ModelError`."""
    text = os.fspath(name_or_path)
    for model in models:
        if model.name == text:
            return model
    path = Path(text)
    if path.suffix.lower() == ".onnx" or path.exists():
        return load_model_info(path)
    names = [m.name for m in models]
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ModelError(f"no model named '{text}'; {hint}(available: {', '.join(names) or 'none found'})")


def load_model_info(onnx_path: str | os.PathLike) -> ModelInfo:
    """Read the card and validate the ONNX file against the contract; raise :class:`ModelError` if broken."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: model file not found")
    card = read_card(onnx_path.with_suffix(".json"))
    facts = validate_onnx(onnx_path)
    problem = _card_disagreement(card, facts)
    if problem:
        raise ModelError(f"{onnx_path.with_suffix('.json')}: {problem}")
    return ModelInfo(name=onnx_path.stem, onnx_path=onnx_path, card=card, **facts)


def _card_disagreement(card: dict, facts: dict) -> str | None:
    """Contract v3: the card's dataset, class names and image size, where given, must match the graph."""
    checks = ((contract.CARD_CLASS_NAMES, list(facts["class_names"])),
              (contract.CARD_DISPLAY_NAMES, list(facts["display_names"]) if facts["display_names"] else None),
              (contract.CARD_IMAGE_SIZE, facts["image_size"]), (contract.CARD_DATASET, facts["dataset"]))
    for key, graph_value in checks:
        if key in card and card[key] != graph_value:
            return (f"the model card says {key} {card[key]!r} but the ONNX model says {graph_value!r} "
                    "(card and model file do not belong together)")
    return None


def read_card(card_path: Path) -> dict:
    """The model card, size- and depth-limited (:func:`json_load_file_limited`); :class:`ModelError` for any problem."""
    if not card_path.is_file():
        raise ModelError(f"{card_path.with_suffix('.onnx')}: its model card {card_path.name} is missing "
                         "(every model needs <name>.onnx and <name>.json)")
    try:
        card = json_load_file_limited(card_path)
    except OSError as exc:
        raise ModelError(f"{card_path}: cannot read the model card ({exc.strerror or exc})") from None
    except JsonLimitError as exc:
        raise ModelError(f"{card_path}: the model card {exc}: this model is skipped") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path}: the model card must be a JSON object, not {type(card).__name__}")
    for key in ("name", "test_accuracy", "summary"):
        if key not in card:
            raise ModelError(f"{card_path}: the model card has no '{key}'")
    acc = card["test_accuracy"]
    if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc) or not 0 <= acc <= 1:
        raise ModelError(f"{card_path}: 'test_accuracy' must be a number between 0 and 1, not {acc!r}")
    return card


# Validation opens an onnxruntime session (no graph optimisation: fast) and reads its signature and
# metadata. Results are cached per (path, size, mtime) so rescanning a folder is cheap.
_VALIDATED: dict[tuple[str, int, int], str | dict] = {}


def validate_onnx(onnx_path: Path) -> dict:
    """What the model knows (class_names, display_names, image_size, dataset), or :class:`ModelError`."""
    try:
        stat = onnx_path.stat()
    except OSError as exc:
        raise ModelError(f"{onnx_path}: cannot read ({exc.strerror or exc})") from None
    key = (str(onnx_path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VALIDATED:
        try:
            _VALIDATED[key] = _contract_problem(onnx_path)
        except Exception as exc:  # anything odd in a hostile file is a refusal, never a crash
            _VALIDATED[key] = f"this model is skipped: {type(exc).__name__}: {str(exc)[:200]}"
    outcome = _VALIDATED[key]
    if isinstance(outcome, str):
        raise ModelError(f"{onnx_path}: {outcome}")
    return dict(outcome)


def _contract_problem(onnx_path: Path) -> str | dict:
    """What the model knows (a dict) if it honours the contract, else a description of the first problem."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"not a loadable ONNX model ({first_line})"

    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        return f"expected exactly 1 input, found {len(inputs)} ({', '.join(i.name for i in inputs)})"
    image = inputs[0]
    if image.name != contract.INPUT_NAME:
        return f"the input is named '{image.name}', the contract says '{contract.INPUT_NAME}'"
    if image.type != "tensor(float)":
        return f"input '{image.name}' is {image.type}, the contract says tensor(float) (float32)"
    meta = session.get_modelmeta().custom_metadata_map
    version = meta.get(contract.META_CONTRACT)
    if version is None:
        return (f"metadata '{contract.META_CONTRACT}' is missing: not exported under the cifar10 ONNX contract "
                "(use `cifar10 export`)")
    if version not in contract.SUPPORTED_CONTRACT_VERSIONS:
        return (f"metadata '{contract.META_CONTRACT}' is {version!r}, expected one of "
                f"{', '.join(repr(v) for v in contract.SUPPORTED_CONTRACT_VERSIONS)} "
                "(was it exported by `cifar10 export`? A newer cifar10-studio may read it)")
    v3 = version == "3"

    shape = image.shape
    if v3:
        size = shape[1] if shape is not None and len(shape) == 4 else None
        if (not isinstance(size, int) or not _shape_matches(shape, ["N", size, size, 3])
                or not contract.MIN_IMAGE_SIZE <= size <= contract.MAX_IMAGE_SIZE):
            return (f"input shape is {_fmt_shape(shape)}, the contract says [N, S, S, 3] (NHWC, any batch size, a "
                    f"fixed square size S from {contract.MIN_IMAGE_SIZE} to {contract.MAX_IMAGE_SIZE})")
    else:
        size = contract.IMAGE_SIZE
        if not _shape_matches(shape, ["N", size, size, 3]):
            return f"input shape is {_fmt_shape(shape)}, the contract says [N, 32, 32, 3] (NHWC, any batch size)"

    raw_names = meta.get(contract.META_CLASS_NAMES)
    if raw_names is None:
        return f"metadata '{contract.META_CLASS_NAMES}' is missing"
    names = _json_list(raw_names)
    if names is None:
        return (f"metadata '{contract.META_CLASS_NAMES}' is not a JSON list ({_json_problem(raw_names)}): "
                f"{raw_names[:80]!r}; this model is skipped")
    display = None
    if v3:
        problem = contract.class_name_problem(names)
        if problem:
            return f"metadata '{contract.META_CLASS_NAMES}': {problem}"
        raw_display = meta.get(contract.META_DISPLAY_NAMES)
        if raw_display is not None:
            display = _json_list(raw_display)
            problem = (f"not a JSON list ({_json_problem(raw_display)}); this model is skipped" if display is None
                       else contract.class_name_problem(display))
            if problem is None and len(display) != len(names):
                problem = f"{len(display)} names for {len(names)} classes"
            if problem:
                return f"metadata '{contract.META_DISPLAY_NAMES}': {problem}"
        dataset = meta.get(contract.META_DATASET) or "unnamed dataset"
    else:
        if names != list(contract.CLASS_NAMES):
            return (f"metadata '{contract.META_CLASS_NAMES}' is {names!r}; the contract's classes, in order, are "
                    f"{list(contract.CLASS_NAMES)}")
        dataset = contract.CIFAR10_DATASET
    num_classes = len(names)

    by_name = {o.name: o for o in outputs}
    if contract.OUTPUT_NAME not in by_name:
        return (f"no output named '{contract.OUTPUT_NAME}' (outputs: "
                f"{', '.join(o.name for o in outputs) or 'none'})")
    probs = by_name[contract.OUTPUT_NAME]
    if probs.type != "tensor(float)":
        return f"output '{probs.name}' is {probs.type}, the contract says tensor(float)"
    if not _shape_matches(probs.shape, ["N", num_classes]):
        return (f"output shape is {_fmt_shape(probs.shape)}, the contract says [N, {num_classes}] "
                f"(one probability for each of the {num_classes} class names in its metadata)")
    # Contract v2's optional outputs: absent is fine (v1), present must have the right shape.
    optional = {contract.LOGITS_NAME: ["N", num_classes], contract.OOD_SCORE_NAME: ["N"],
                contract.CAM_NAME: ["N", "h", "w", num_classes]}
    for name, shape in optional.items():
        out = by_name.get(name)
        if out is None:
            continue
        if out.type != "tensor(float)":
            return f"output '{name}' is {out.type}, the contract says tensor(float)"
        if out.shape is None or len(out.shape) != len(shape) or not _shape_matches(
                [d for d, want in zip(out.shape, shape) if want not in ("h", "w")], [w for w in shape if w not in ("h", "w")]):
            return f"output '{name}' has shape {_fmt_shape(out.shape)}, the contract says [{', '.join(map(str, shape))}]"

    if not meta.get(contract.META_MODEL_NAME):
        return f"metadata '{contract.META_MODEL_NAME}' is missing"
    return {"class_names": tuple(names), "display_names": tuple(display) if display else None,
            "image_size": size, "dataset": dataset}


def _json_problem(text: str) -> str:
    """Why a metadata value is not a JSON list (it is too deep, too long, holds a huge number...)."""
    try:
        value = json_loads_limited(text, max_depth=4, max_chars=1 << 20)
    except JsonLimitError as exc:
        return f"it {exc}"
    return f"it is a {type(value).__name__}"


def _json_list(text: str) -> list | None:
    try:
        value = json_loads_limited(text, max_depth=4, max_chars=1 << 20)
    except JsonLimitError:
        return None
    return value if isinstance(value, list) else None


def _shape_matches(actual, expected) -> bool:
    """``expected`` uses "N" for the batch axis, which must be dynamic (a name or None) or at least not fixed."""
    if actual is None or len(actual) != len(expected):
        return False
    for got, want in zip(actual, expected):
        if want == "N":
            if isinstance(got, int):  # a fixed batch size would break batched inference
                return False
        elif got != want:
            return False
    return True


def _fmt_shape(shape) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) + "]"
