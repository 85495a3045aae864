"""What a training run is asked to do: :class:`TrainSettings` (the model's study defaults with the command
line's overrides) and the name its model is exported under.

``training.train`` trains with these settings and ``training.export`` rebuilds them from a finished run's
record (``run.json``) to load the same data again; neither imports the other for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from cifar10.contract import IMAGE_SIZE
from cifar10.errors import UserFacingError
from cifar10.paths import default_model_name, model_file_stem
from training import models


@dataclass(frozen=True)
class TrainSettings:
    model: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    augment: bool
    shift_px: int
    tta: str
    early_stopping_patience: int
    lr_schedule: str
    precision: str
    validation_size: int
    seed: int = 0
    weights: str | None = None  # only for transfer models: "imagenet" or None
    init_from: str | None = None  # a previous run of the same model to continue from (its checkpoint)
    init_head: str | None = None  # a finished instant (linear) run whose head the fine-tune's head starts from
    limit: int | None = None  # keep the first N images of each split (smoke runs, tests)
    image_size: int = IMAGE_SIZE  # the model's input size S (CIFAR-10: 32)
    data: str | None = None  # a folder of labelled images (one subfolder per class); None = CIFAR-10
    name: str | None = None  # the exported model's name (default: the model's, or <model>-<folder> for --data)

    @classmethod
    def for_model(cls, model: str, /, **overrides) -> "TrainSettings":
        """The model's study defaults, with every non-None override applied.

        CIFAR-10 is 32 px; folder data (``data``) defaults to the model's ``image_size`` (128 for
        animals10_cnn and efficientnet_lite0_transfer, 32 for the CIFAR-10 CNNs). The augmentation shift
        default is given for 32 px and scales with the image size (4 px at 32 -> 16 px at 128); an explicit
        ``shift_px`` is in pixels of the actual images."""
        defaults = asdict(models.get_spec(model).defaults)
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("data") is None:
            if given.get("image_size", IMAGE_SIZE) != IMAGE_SIZE:
                raise UserFacingError(f"CIFAR-10 images are {IMAGE_SIZE} px: --image-size applies to --data only")
            defaults["image_size"] = IMAGE_SIZE
        else:
            given["data"] = str(given["data"])
        size = given.get("image_size", defaults["image_size"])
        if not isinstance(size, int) or size < 16 or size > 1024:
            raise UserFacingError(f"--image-size must be a whole number of pixels from 16 to 1024, not {size!r}")
        if "shift_px" not in given:
            defaults["shift_px"] = round(defaults["shift_px"] * size / IMAGE_SIZE)
        settings = cls(model=model, **defaults)
        return replace(settings, **given)

    @classmethod
    def from_record(cls, record: dict) -> "TrainSettings":
        """The settings a finished run recorded (``run.json``'s "settings"; keys this version does not know
        are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record["settings"].items() if k in known})

    @property
    def export_name(self) -> str:
        """The exported model's file name stem: ``name``, else the model's, or ``<model>-<folder>`` for --data."""
        if self.name:
            return safe_name(self.name)
        if self.data is None:
            return self.model
        return safe_name(default_model_name(self.model, self.data) or self.model)


def safe_name(text: str) -> str:
    """``text`` as a file name stem that is safe everywhere: letters, digits, '.', '_', '-' (other characters,
    spaces included, become '_'); non-ASCII letters are kept (NFC)."""
    cleaned = model_file_stem(text)
    if not cleaned:
        raise UserFacingError(f"{text!r} cannot be a model name: use letters, digits, '.', '_' or '-'")
    return cleaned
