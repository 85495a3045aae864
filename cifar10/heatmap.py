"""Where the model looked: a heatmap over the model's S x S input (32x32 for CIFAR-10) for the predicted class.

- Class activation maps (Zhou et al. 2016) when the model has the contract-v2 ``cam`` output (a global
  average pooling + Dense head): exact, one forward pass.
- Occlusion sensitivity (Zeiler & Fergus 2014) for every other model: grey out an S/4 x S/4 patch at each
  position (stride S/8: 49 patches; 8x8 and 4 at 32 px), and measure how much the predicted class's probability drops; forward
  passes only, batched, so any contract model works. Slower (50 images per heatmap): the desktop app runs
  it on a worker thread.

Both give an ``[S, S]`` float map scaled to 0..1 (1 = where the evidence for the class is); :func:`overlay`
blends it onto any RGB picture. numpy + Pillow only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cifar10 import contract

PATCH, STRIDE = 8, 4  # at 32 px; scaled with the input size (a quarter and an eighth of it)
GREY = 128.0  # the occluder's colour (mid grey, raw 0..255 like the contract input)


@dataclass
class Heatmap:
    heat: np.ndarray     # [S, S] float32, 0..1
    class_index: int     # the class it explains (the predicted one unless asked otherwise)
    method: str          # "cam" or "occlusion"
    classes: tuple[str, ...] = contract.CLASS_NAMES  # the model's labels

    @property
    def class_name(self) -> str:
        return self.classes[self.class_index]

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the hottest pixel of the map."""
        row, col = np.unravel_index(int(np.argmax(self.heat)), self.heat.shape)
        return int(row), int(col)


def _normalise(heat: np.ndarray) -> np.ndarray:
    heat = np.asarray(heat, np.float32)
    heat = heat - heat.min()
    top = float(heat.max())
    return heat / top if top > 0 else heat


def _resize(heat: np.ndarray, size: int = contract.IMAGE_SIZE) -> np.ndarray:
    if heat.shape == (size, size):
        return heat.astype(np.float32)
    image = Image.fromarray(np.asarray(heat, np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.BILINEAR), np.float32)


def cam_heatmap(cam: np.ndarray, class_index: int, size: int = contract.IMAGE_SIZE) -> np.ndarray:
    """A model's ``cam`` output for one image (``[h, w, C]``) -> the class's map at ``size`` x ``size``, 0..1.

    Negative evidence is cut at 0 (the usual CAM display), then the map is stretched to 0..1."""
    return _normalise(_resize(np.maximum(np.asarray(cam, np.float32)[:, :, class_index], 0), size))


def patch_and_stride(size: int) -> tuple[int, int]:
    """The occluder's side and stride for an input of ``size`` px: 49 positions at any size (8 and 4 at 32)."""
    return max(1, size * PATCH // 32), max(1, size * STRIDE // 32)


def occlusion_batch(image: np.ndarray, patch: int | None = None, stride: int | None = None) -> tuple[np.ndarray, list]:
    """The occluded copies of an S x S image (first row: the image itself) and each patch's (y, x)."""
    image = np.asarray(image, np.float32)
    size = image.shape[0]
    default_patch, default_stride = patch_and_stride(size)
    patch, stride = patch or default_patch, stride or default_stride
    positions = [(y, x) for y in range(0, size - patch + 1, stride)
                 for x in range(0, size - patch + 1, stride)]
    batch = np.repeat(image[None], len(positions) + 1, axis=0)
    for i, (y, x) in enumerate(positions, start=1):
        batch[i, y:y + patch, x:x + patch] = GREY
    return batch, positions


def occlusion_heatmap(probabilities: np.ndarray, positions: list, class_index: int, patch: int = PATCH,
                      size: int = contract.IMAGE_SIZE) -> np.ndarray:
    """From the probabilities of :func:`occlusion_batch`'s images: the mean drop of the class's probability
    at each pixel over the patches that covered it (rises count as 0), scaled to 0..1."""
    probabilities = np.asarray(probabilities, np.float32)
    base = probabilities[0, class_index]
    drop = np.zeros((size, size), np.float32)
    count = np.zeros_like(drop)
    for (y, x), p in zip(positions, probabilities[1:, class_index]):
        drop[y:y + patch, x:x + patch] += max(float(base - p), 0.0)
        count[y:y + patch, x:x + patch] += 1
    return _normalise(drop / np.maximum(count, 1))


def explain(classifier, image: np.ndarray, class_index: int | None = None, *, method: str = "auto") -> Heatmap:
    """The heatmap for one model-sized image with a :class:`cifar10.inference.Classifier` (CAM when the model has
    it, occlusion otherwise; ``method`` forces one). ``class_index`` defaults to the predicted class."""
    image = np.asarray(image)
    size = image.shape[0]
    if method not in ("auto", "cam", "occlusion"):
        raise ValueError(f"unknown heatmap method {method!r}")
    if method == "cam" and not classifier.has_cam:
        raise ValueError(f"{classifier.model.name} has no 'cam' output (contract v2, GAP + Dense head)")
    if method in ("auto", "cam") and classifier.has_cam:
        out = classifier.predict_all(image[None], with_cam=True)
        k = int(np.argmax(out.probabilities[0])) if class_index is None else class_index
        return Heatmap(cam_heatmap(out.cam[0], k, size), k, "cam", classifier.labels)
    patch, stride = patch_and_stride(size)
    batch, positions = occlusion_batch(image, patch, stride)
    probabilities = classifier.predict(batch)
    k = int(np.argmax(probabilities[0])) if class_index is None else class_index
    return Heatmap(occlusion_heatmap(probabilities, positions, k, patch, size), k, "occlusion", classifier.labels)


def colourise(heat: np.ndarray) -> np.ndarray:
    """0..1 map -> RGB uint8 [h, w, 3] (a blue-cyan-yellow-red ramp, like the usual 'jet' heatmaps)."""
    stops = np.array([[0, 0, 128], [0, 128, 255], [0, 230, 230], [255, 230, 0], [255, 64, 0], [200, 0, 0]], np.float32)
    pos = np.clip(np.asarray(heat, np.float32), 0, 1) * (len(stops) - 1)
    low = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def overlay(picture: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the heatmap (resized smoothly to the picture) onto an RGB uint8 picture [H, W, 3]."""
    picture = np.asarray(picture, np.uint8)
    h, w = picture.shape[:2]
    big = np.asarray(Image.fromarray(np.asarray(heat, np.float32), mode="F").resize((w, h), Image.BICUBIC), np.float32)
    colours = colourise(np.clip(big, 0, 1)).astype(np.float32)
    weight = alpha * np.clip(big, 0, 1)[..., None] ** 0.5  # cold areas stay mostly the picture
    return (picture.astype(np.float32) * (1 - weight) + colours * weight).astype(np.uint8)
