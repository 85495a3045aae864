"""cifar10.preprocess.load_image on real files of many formats and modes, and on broken ones."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from cifar10.preprocess import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, load_image, load_preview

RNG = np.random.default_rng(42)
NOISE = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def halves(width, height, left, right, mode="RGB"):
    """An image whose left half is ``left`` and right half ``right``."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = left
    array[:, width // 2:] = right
    return Image.fromarray(array).convert(mode)


def assert_close(pixel, rgb, tol=40):
    assert np.all(np.abs(np.asarray(pixel, int) - np.asarray(rgb, int)) <= tol), (pixel, rgb)


@pytest.mark.parametrize("fmt,ext,options", [
    ("PNG", "png", {}), ("BMP", "bmp", {}), ("TIFF", "tif", {}), ("WEBP", "webp", {"lossless": True}),
    ("PPM", "ppm", {}), ("TGA", "tga", {}),
])
def test_32x32_rgb_comes_back_pixel_identical(tmp_path, fmt, ext, options):
    path = tmp_path / f"noise.{ext}"
    Image.fromarray(NOISE).save(path, fmt, **options)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, NOISE)


def test_sources_path_str_bytes_and_file_object(tmp_path):
    path = tmp_path / "n.png"
    Image.fromarray(NOISE).save(path)
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes())):
        np.testing.assert_array_equal(load_image(source), NOISE)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(load_image(f), NOISE)
        assert not f.closed  # a caller's file object is not closed for them


def test_whole_image_is_squashed_not_cropped():
    # 96x32: left third red, middle green, right third blue. A centre crop would lose red and blue.
    array = np.zeros((32, 96, 3), np.uint8)
    array[:, :32], array[:, 32:64], array[:, 64:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    out = load_image(buffer.getvalue())
    assert_close(out[16, 2], (255, 0, 0), 10)
    assert_close(out[16, 16], (0, 255, 0), 10)
    assert_close(out[16, 29], (0, 0, 255), 10)


def test_downscale_is_antialiased():
    # A 1-pixel checkerboard must average to grey; point sampling would keep pure black/white.
    board = (np.indices((320, 320)).sum(0) % 2 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(board, "L").save(buffer, "PNG")
    out = load_image(buffer.getvalue()).astype(int)
    assert abs(out.mean() - 127.5) < 3
    assert out.std() < 3


def test_jpeg_exif_orientation_is_applied(tmp_path):
    image = halves(64, 32, (230, 20, 20), (20, 20, 230))  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": the left side becomes the top
    path = tmp_path / "rotated.jpg"
    image.save(path, "JPEG", exif=exif, quality=95)
    out = load_image(path)
    assert_close(out[3, 16], (230, 20, 20))   # top is red
    assert_close(out[28, 16], (20, 20, 230))  # bottom is blue
    plain = tmp_path / "plain.jpg"
    image.save(plain, "JPEG", quality=95)
    assert_close(load_image(plain)[16, 3], (230, 20, 20))  # without the tag: red stays left
    assert load_preview(path).shape[:2] == (64, 32)  # display preview is upright too (portrait)


def test_big_jpeg_photo_is_cheap(tmp_path):
    # A 4000x3000 (12 MP) photo: JPEG draft decoding keeps this fast and the content must survive.
    photo = halves(4000, 3000, (200, 40, 40), (40, 40, 200))
    path = tmp_path / "photo.jpg"
    photo.save(path, "JPEG", quality=90)
    load_image(path)  # warm-up (plugin import)
    start = time.perf_counter()
    out = load_image(path)
    elapsed = time.perf_counter() - start
    assert out.shape == (32, 32, 3)
    assert_close(out[16, 4], (200, 40, 40), 25)
    assert_close(out[16, 27], (40, 40, 200), 25)
    assert elapsed < 0.5, f"4000x3000 JPEG took {elapsed:.2f}s"


def test_gif_animation_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (32, 32), c).convert("P") for c in ((250, 0, 0), (0, 0, 250), (0, 250, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert_close(load_image(path)[10, 10], (250, 0, 0), 10)


def test_animated_webp_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ((0, 200, 0), (200, 0, 0))]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert_close(load_image(path)[5, 5], (0, 200, 0), 10)


def test_lossy_webp(tmp_path):
    path = tmp_path / "photo.webp"
    halves(80, 60, (220, 30, 30), (30, 30, 220)).save(path, "WEBP", quality=80)
    out = load_image(path)
    assert_close(out[16, 3], (220, 30, 30))
    assert_close(out[16, 28], (30, 30, 220))


def test_tiff_16_bit_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    path = tmp_path / "deep.tif"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I;16")
    out = load_image(path).astype(int)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])  # grey
    assert out[:, 0].max() <= 5 and out[:, -1].min() >= 250  # full range kept
    assert 100 < out[:, 16].mean() < 155  # the middle is mid-grey, not white (clipping would give 255)


def test_png_16_bit_grey(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((32, 32), 32896, np.uint16)).save(path)  # 32896 / 257 = 128
    np.testing.assert_array_equal(load_image(path), np.full((32, 32, 3), 128, np.uint8))


def test_one_bit_image(tmp_path):
    bits = np.zeros((32, 32), bool)
    bits[:, 16:] = True
    path = tmp_path / "bw.png"
    Image.fromarray(bits).convert("1").save(path)
    out = load_image(path)
    assert set(np.unique(out)) == {0, 255}
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 31].tolist() == [255, 255, 255]


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (48, 48), (0, 255, 255, 0)).save(path, "JPEG", quality=95)  # pure red in CMYK
    assert Image.open(path).mode == "CMYK"
    assert_close(load_image(path)[16, 16], (255, 0, 0), 30)


def test_rgba_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent *black*
    rgba[:, 16:] = (200, 0, 0, 255)          # opaque red on the right
    rgba[:8, :8] = (0, 0, 200, 128)          # half-transparent blue corner
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = load_image(path)
    assert out[20, 4].tolist() == [255, 255, 255]
    assert out[20, 24].tolist() == [200, 0, 0]
    assert_close(out[2, 2], (127, 127, 227), 3)  # 50 % blue over white


def test_opaque_rgba_32x32_is_identical(tmp_path):
    path = tmp_path / "opaque.png"
    Image.fromarray(np.dstack([NOISE, np.full((32, 32), 255, np.uint8)]), "RGBA").save(path)
    np.testing.assert_array_equal(load_image(path), NOISE)


@pytest.mark.parametrize("mode", ["L", "LA", "P"])
def test_other_modes(tmp_path, mode):
    image = Image.new("RGB", (32, 32), (153, 153, 153)).convert(mode)  # 153: in the default web palette
    path = tmp_path / f"img_{mode}.png"
    image.save(path)
    assert Image.open(path).mode == mode
    assert_close(load_image(path)[0, 0], (153, 153, 153), 2)


def test_palette_png_with_transparent_index(tmp_path):
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (16, 0, 32, 32))
    path = tmp_path / "trns.png"
    image.save(path, transparency=0)  # index 0 (black) is transparent
    out = load_image(path)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 31].tolist() == [255, 0, 0]


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, I am not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_eps_is_not_opened(tmp_path):
    # Pillow would hand EPS to Ghostscript; load_image only opens plain raster formats.
    path = tmp_path / "drawing.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\nshowpage\n")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(path)


def test_empty_missing_and_folder(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height, all black: a few hundred kB that claim ~1 GB of pixels."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(30000, 30000))  # 900 megapixels
    assert path.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large"):
        load_image(path)
    assert time.perf_counter() - start < 1.0


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "medium.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(path)
    with pytest.raises(ImageError, match="60,000 pixels"):
        load_image(path, max_pixels=50_000)
    assert load_image(path).shape == (32, 32, 3)
    assert MAX_PIXELS >= 4000 * 3000 * 4


def test_error_message_names_the_file_and_has_reason(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("x")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(path) in str(info.value) and info.value.reason == "not an image, or an unsupported format"


def test_suffixes():
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)


def test_preview_keeps_aspect(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (1000, 250), (1, 2, 3)).save(path)
    assert load_preview(path, 400).shape == (100, 400, 3)
