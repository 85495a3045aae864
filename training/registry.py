"""The model registry, in the style of timm's: it knows no models. A model module decorates one build
function per model with :func:`register_model`; importing :mod:`training.models` imports every model
module, so every model is registered. No Keras import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from cifar10.errors import UserFacingError
from training.data import VALIDATION_SIZE


class UnknownModelError(UserFacingError, KeyError):
    pass


@dataclass(frozen=True)
class TrainingDefaults:
    """The study's hyperparameters for a model; every one can be overridden on the command line."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    augment: bool = False
    shift_px: int = 4  # augmentation: random translation of up to this many pixels (with flips)
    tta: str = "none"  # test-time augmentation built into the exported graph: none | flip | flip_shift
    early_stopping_patience: int = 0  # 0 = off
    lr_schedule: str = "constant"  # constant | plateau | cosine (models with their own recipe: theirs)
    precision: str = "float32"  # or mixed_bfloat16, or auto: mixed_bfloat16 where native (training/precision.py)
    validation_size: int = VALIDATION_SIZE  # held out for model selection; 0 = train on all 50,000
    image_size: int = 32  # input size for folder datasets (`--data`) when --image-size is not given


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable  # (**kwargs) -> keras.Model
    defaults: TrainingDefaults
    summary: str
    study: dict = field(default_factory=dict)  # what the original study reported, for the report
    # A model's own training recipe, fit(model, data, settings, callbacks) -> history dict, used instead
    # of train.py's compile + fit (fast_cnn: its own optimiser, batches and schedule).
    fit: Callable | None = None
    # True for models that start from pretrained (ImageNet) weights: build(weights=...) takes
    # `cifar10 train --weights imagenet|none`.
    pretrained: bool = False

    @property
    def resumable(self) -> bool:
        """Whether ``cifar10 train --resume`` can continue a run of it: train.py's own fit can, and so can a
        recipe whose fit takes ``checkpoint`` (what to continue from) and ``keeper`` (the per-epoch
        checkpoint callback, :class:`training.checkpoint.EpochCheckpoint`)."""
        if self.fit is None:
            return True
        import inspect

        return {"checkpoint", "keeper"} <= set(inspect.signature(self.fit).parameters)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, summary: str, study: dict | None = None, fit: Callable | None = None,
                   pretrained: bool = False, **defaults):
    """Decorator for a model's build function: ``@register_model("name", summary=..., epochs=..., ...)``;
    the keyword arguments other than those named are the model's :class:`TrainingDefaults`."""
    def decorator(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, build, TrainingDefaults(**defaults), summary, study or {}, fit, pretrained)
        return build
    return decorator


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def create_model(name: str, **kwargs):
    return get_spec(name).build(**kwargs)


def build_accepts(name: str, argument: str) -> bool:
    """Whether the model's build function takes ``argument`` (e.g. "image_size": fast_cnn is 32 px only)."""
    import inspect

    return argument in inspect.signature(get_spec(name).build).parameters
