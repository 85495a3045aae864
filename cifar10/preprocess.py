"""Turn any image file into the S x S RGB array a model takes (32x32 for CIFAR-10): the one preprocessing path.

Every app (CLI, desktop, web) calls :func:`load_image` with the model's input size, and so does the
folder-dataset loader in training (what a model learns is what the apps feed it); nothing else resizes
images for a model.
Only Pillow and numpy are used here (no TensorFlow), so it runs wherever the apps run.

Decisions, and why
------------------
* **Whole image, no crop.** The image is resized to exactly S x S, squashing the aspect ratio.
  CIFAR-10 images are whole small scenes with the object filling most of the frame; a centre crop
  can cut the object off, and letter-boxing adds flat borders the models never saw in training.
* **Anti-aliased downscale.** ``Image.resize(..., BICUBIC, reducing_gap=3.0)``: Pillow's resize is
  a true convolution whose kernel widens with the reduction factor, so a 4000x3000 photo is
  averaged, not point-sampled (the study's apps used ``keras.utils.load_img(target_size=...)``,
  whose default is *nearest neighbour*: a 4000->32 reduction then keeps 1 pixel in 15,000 and
  the result is mostly aliasing noise). ``reducing_gap`` first shrinks by an integer factor with
  the cheap ``Image.reduce()`` box filter while the image is still >= 3x the target, then bicubic
  does the last, quality-relevant step (Pillow documents 3.0 as indistinguishable from a full
  convolution). Bicubic rather than Lanczos: about as sharp at 32 px, with less ringing on the hard
  edges that photos of objects have; rather than BOX: BOX alone aliases on fine textures.
* **JPEG draft.** For JPEG, ``Image.draft`` asks libjpeg to decode at 1/2, 1/4 or 1/8 scale via the
  DCT (each 8x8 block reduced to its low frequencies, i.e. an area average) while keeping the image
  >= 96x96; a 12-megapixel photo is decoded as 500x375, which is what makes big photos cheap.
* **Orientation.** EXIF orientation is applied (``ImageOps.exif_transpose``), so a phone photo
  taken in portrait is classified upright.
* **Animations.** The first frame is used (GIF, APNG, animated WebP).
* **Transparency is composited onto white.** The colour under fully transparent pixels is arbitrary
  (often black), and cut-out objects / icons are meant to be seen on a light page background.
  CIFAR-10 has no alpha channel, so some background has to be chosen; white is the one viewers use.
* **Any mode to RGB.** Greyscale, palette, 1-bit, CMYK (including Adobe's inverted CMYK JPEGs,
  handled by Pillow), YCbCr, and 16/32-bit integer or float images. High bit depth images are
  scaled to 8 bits (16-bit: value/257), not clipped, so a 16-bit TIFF is not all white.
  Embedded ICC colour profiles are not applied (values are taken as sRGB).
* **Decompression bombs.** An image whose header declares more than ``MAX_PIXELS`` pixels
  (Pillow's own default, 89.5 megapixels = 2 x 16-bit 8192x5461) is refused before it is decoded:
  a 100 kB PNG can claim 30,000x30,000 pixels and would otherwise need gigabytes.
* **Formats.** Only the common raster formats in ``FORMATS`` are opened (no EPS, which would run
  Ghostscript, and none of Pillow's exotic scientific formats): the web apps feed uploads in here.
* **Errors.** Every failure (missing, unreadable, not an image, truncated, bomb) raises
  :class:`ImageError` with a message that starts with what went wrong, never a Pillow traceback.

An S x S RGB image comes back pixel-identical, so the CIFAR-10 test images (and
``resources/samples``) reproduce the evaluated accuracy exactly.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cifar10.contract import IMAGE_SIZE

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

MAX_PIXELS = 89_478_485  # = PIL.Image.MAX_IMAGE_PIXELS's default; see module docstring
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0

# Formats load_image opens (Pillow format ids); the rest of Pillow's plugins are not used.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "PPM", "ICO", "TGA", "AVIF", "QOI")

# File-name suffixes of those formats: file dialogs, upload widgets, and "is this meant to be an
# image?" decisions. Folder scans still give every file a row (a non-image gets an error row).
IMAGE_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".tga", ".avif", ".qoi",
})

try:  # optional: HEIC/HEIF (iPhone photos) when pillow-heif is installed; not a dependency
    import pillow_heif  # type: ignore

    pillow_heif.register_heif_opener()
    FORMATS = (*FORMATS, "HEIF")
    IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".heic", ".heif"}
except Exception:  # ImportError, or a broken install: HEIC files then get a clear error row
    pass

Image.init()
_OPEN_FORMATS = tuple(f for f in FORMATS if f in Image.OPEN)  # AVIF/QOI need newer Pillow builds

# Pillow warns (and only errors at 2x) above its own limit; we refuse above MAX_PIXELS ourselves,
# so its warning would only be noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageError(ValueError):
    """The source could not be turned into an image; ``str(exc)`` says why, for a user to read.

    ``reason`` is the message without the file name (for tables that show the path anyway);
    ``source`` names the file, or is None for in-memory data.
    """

    def __init__(self, reason: str, source: str | None = None):
        self.reason, self.source = reason, source
        super().__init__(f"{reason}: {source}" if source else reason)


def load_image(source: ImageSource, size: int = IMAGE_SIZE, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``source`` (path, bytes, or binary file object) into uint8 RGB ``[size, size, 3]`` (the model's
    input size: :attr:`cifar10.registry.ModelInfo.image_size`; 32 for the CIFAR-10 models).

    Raises :class:`ImageError` for anything that is not a readable image within ``max_pixels``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, not {size!r}")
    return _decode(source, max_pixels=max_pixels, size=(size, size), keep_aspect=False)


def load_preview(source: ImageSource, max_side: int = 512, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Same decoding as :func:`load_image` but for display: aspect kept, longest side <= ``max_side``."""
    return _decode(source, max_pixels=max_pixels, size=(max_side, max_side), keep_aspect=True)


# --- internals ------------------------------------------------------------------------------------

def _describe(source: ImageSource) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return os.fspath(name) if isinstance(name, (str, os.PathLike)) else None


def _open_source(source: ImageSource):
    """Return (file object, close_it) or raise ImageError for sources that cannot be read at all."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("empty data: not an image")
        return io.BytesIO(bytes(source)), True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return open(path, "rb"), True
        except FileNotFoundError:
            raise ImageError("file not found", str(path)) from None
        except IsADirectoryError:
            raise ImageError("is a folder, not an image file", str(path)) from None
        except PermissionError:
            raise ImageError("permission denied", str(path)) from None
        except OSError as exc:
            raise ImageError(f"cannot read the file ({exc.strerror or exc})", str(path)) from None
    if hasattr(source, "read"):
        return source, False
    raise ImageError(f"unsupported image source of type {type(source).__name__}")


def _decode(source: ImageSource, *, max_pixels: int, size: tuple[int, int], keep_aspect: bool) -> np.ndarray:
    what = _describe(source)
    fp, close = _open_source(source)
    try:
        try:
            im = Image.open(fp, formats=_OPEN_FORMATS)
        except UnidentifiedImageError:
            raise ImageError("not an image, or an unsupported format", what) from None
        except Image.DecompressionBombError:
            raise ImageError(f"image too large (decompression bomb guard, over {max_pixels:,} pixels)",
                             what) from None
        with im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageError(f"image too large: {width}x{height} = {width * height:,} pixels, "
                                 f"the limit is {max_pixels:,} (decompression bomb guard)", what)
            if width < 1 or height < 1:
                raise ImageError(f"image has no pixels ({width}x{height})", what)
            return _to_rgb_array(im, size=size, keep_aspect=keep_aspect)
    except ImageError as exc:
        if exc.source is None and what:
            raise ImageError(exc.reason, what) from None
        raise
    except Image.DecompressionBombError:
        raise ImageError("image too large (decompression bomb guard)", what) from None
    except MemoryError:
        raise ImageError("out of memory while decoding", what) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
            ZeroDivisionError, AttributeError) as exc:
        # Pillow reports truncated / corrupt data with these, depending on the format and plugin.
        detail = str(exc) or type(exc).__name__
        if "truncated" in detail.lower():
            raise ImageError(f"truncated or incomplete image file ({detail})", what) from None
        raise ImageError(f"corrupt or unreadable image ({detail})", what) from None
    finally:
        if close:
            fp.close()


def _to_rgb_array(im: ImageFile.ImageFile, *, size: tuple[int, int], keep_aspect: bool) -> np.ndarray:
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    if im.format == "JPEG" or im.format == "MPO":
        # Decode at 1/2..1/8 scale while staying >= REDUCING_GAP x the target (cheap big photos).
        im.draft(None, (int(size[0] * REDUCING_GAP), int(size[1] * REDUCING_GAP)))
    im.load()  # decoding errors (truncation, bad data) surface here
    try:
        ImageOps.exif_transpose(im, in_place=True)  # upright; no copy when there is nothing to do
    except Exception:  # unreadable EXIF block: the pixels are still fine, keep them as stored
        pass
    rgb = _convert_to_rgb(im)
    if keep_aspect:
        scale = min(size[0] / rgb.width, size[1] / rgb.height, 1.0)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    if rgb.size != size:
        rgb = rgb.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)
    array = np.asarray(rgb, dtype=np.uint8)
    if array.shape != (size[1], size[0], 3):  # defensive: never hand a model a wrong shape
        raise ImageError(f"decoded to an unexpected shape {array.shape}")
    return np.ascontiguousarray(array)


def _convert_to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I", "F") or mode.startswith("I;16"):
        im = _high_bit_depth_to_l(im)
        mode = "L"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif mode in ("L", "1") and "transparency" in im.info:  # tRNS colour key on greyscale PNGs
        im = im.convert("LA")
        mode = "LA"
    elif mode == "RGB":
        return im
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError:  # e.g. LAB: no direct path in Pillow
        raise ImageError(f"unsupported colour mode {mode}") from None


def _high_bit_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer / float greyscale -> 8-bit greyscale by scaling, not clipping."""
    values = np.asarray(im).astype(np.float64)
    if im.mode.startswith("I;16"):
        scaled = values / 257.0
    elif im.mode == "F":
        scaled = values * 255.0 if values.size and np.nanmax(values) <= 1.0 else values
    else:  # "I": Pillow opens 16-bit PNG/PGM/TIFF this way in some versions; 8-bit data passes through
        peak = np.nanmax(values) if values.size else 0
        scaled = values / 257.0 if peak > 255 else values
    return Image.fromarray(np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8), mode="L")
