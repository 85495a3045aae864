"""Build the out-of-distribution (OOD) image set: pictures that show none of CIFAR-10's ten classes.

    python benchmarks/ood_set.py [--out /tmp/cifar10_ood]

Deterministic (fixed seeds), offline, made only from what is installed with the dev extra (scikit-image,
matplotlib, Pillow and the DejaVu fonts matplotlib ships):

| group | images | what |
|---|---|---|
| photos | 156: 26 whole + 5 random crops each | scikit-image's bundled photos and scans (astronaut, rocket, coffee, coins, page, text, moon, Hubble deep field, immunohistochemistry, clock, brick, grass, gravel, checkerboard, retina, logo, colour wheel, cell, microaneurysms, Shepp-Logan phantom, binary blobs, camera man, the left stereo motorcycle) and matplotlib's sample photo (Grace Hopper) and two logos |
| faces | 60 | the first 60 of scikit-image's `lfw_subset` (25x25 grey faces) |
| documents | 80 | pages of random words rendered with Pillow (DejaVu fonts, 1-3 columns, headings) |
| charts | 80 | matplotlib line, bar, scatter, pie and histogram charts of random data |
| screenshots | 40 | window-like screenshots drawn with Pillow (title bar, buttons, text fields, lists) |
| noise | 60 | uniform, Gaussian, salt-and-pepper and blurred (blobby) colour noise |
| flat | 60 | 40 flat colours and 20 linear gradients |

Left out on purpose: scikit-image's `chelsea` (a cat) and `horse` (a horse silhouette), which are in
CIFAR-10's classes. Written as PNG files (``<group>_<name>.png``); the apps' own ``load_image`` turns them
into 32x32 inputs when they are classified.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PHOTOS = ("astronaut", "rocket", "coffee", "coins", "page", "text", "moon", "hubble_deep_field",
          "immunohistochemistry", "clock", "brick", "grass", "gravel", "checkerboard", "retina", "logo",
          "colorwheel", "cell", "microaneurysms", "shepp_logan_phantom", "binary_blobs", "camera")
WORDS = ("the of and to in is for that with as on by this are from be at or an was which it we data model "
         "results table figure section report analysis value method system user time page number total "
         "invoice date amount customer order shipping address quarterly revenue meeting agenda notes").split()
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.ImageFont:
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    path = FONT_DIR / f"{name}{'-Bold' if bold else ''}.ttf"
    if not path.exists():
        import matplotlib
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / f"{name}{'-Bold' if bold else ''}.ttf"
    return ImageFont.truetype(str(path), size)


def _rgb(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        array = (255 * (array - array.min()) / max(array.max() - array.min(), 1e-9)).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def photos(rng: random.Random):
    import matplotlib
    import skimage.data as data

    sources = {}
    for name in PHOTOS:
        sources[name] = _rgb(getattr(data, name)())
    left, _, _ = data.stereo_motorcycle()
    sources["motorcycle_left"] = _rgb(left)
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for file in ("grace_hopper.jpg", "logo2.png", "Minduka_Present_Blue_Pack.png"):
        with Image.open(sample / file) as im:
            sources[Path(file).stem.lower()] = im.convert("RGB")
    for name, image in sources.items():
        yield f"photo_{name}", image
        w, h = image.size
        for i in range(5):
            side = int(min(w, h) * rng.uniform(0.3, 0.7))
            x, y = rng.randrange(0, w - side + 1), rng.randrange(0, h - side + 1)
            yield f"photo_{name}_crop{i}", image.crop((x, y, x + side, y + side))


def faces(rng: random.Random):
    import skimage.data as data

    for i, face in enumerate(data.lfw_subset()[:60]):
        yield f"face_{i:02d}", _rgb(face)


def documents(rng: random.Random):
    for i in range(80):
        w, h = rng.choice([(600, 800), (800, 600), (500, 700), (700, 500)])
        paper = tuple(rng.randint(235, 255) for _ in range(3))
        image = Image.new("RGB", (w, h), paper)
        draw = ImageDraw.Draw(image)
        ink = tuple(rng.randint(0, 60) for _ in range(3))
        columns, y = rng.choice([1, 1, 2, 3]), 30
        if rng.random() < 0.7:
            draw.text((30, y), " ".join(rng.choices(WORDS, k=rng.randint(2, 5))).title(),
                      fill=ink if rng.random() < 0.5 else (20, 60, 160), font=_font(rng.randint(22, 34), bold=True))
            y += 60
        size = rng.randint(10, 16)
        font = _font(size, mono=rng.random() < 0.2)
        col_w = (w - 60) // columns
        for c in range(columns):
            yy = y
            while yy < h - 30:
                line, chars = [], 0
                while chars < col_w / (size * 0.6):
                    word = rng.choice(WORDS)
                    line.append(word)
                    chars += len(word) + 1
                draw.text((30 + c * col_w, yy), " ".join(line[:-1]), fill=ink, font=font)
                yy += int(size * 1.5) + (size if rng.random() < 0.08 else 0)
        yield f"document_{i:02d}", image


def charts(rng: random.Random):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nprng = np.random.default_rng(1)
    kinds = ("line", "bar", "scatter", "pie", "hist")
    for i in range(80):
        kind = kinds[i % len(kinds)]
        fig, ax = plt.subplots(figsize=(rng.uniform(4, 7), rng.uniform(3, 5)), dpi=80)
        if kind == "line":
            for _ in range(rng.randint(1, 4)):
                ax.plot(np.cumsum(nprng.normal(size=60)))
            ax.grid(rng.random() < 0.5)
        elif kind == "bar":
            n = rng.randint(3, 12)
            ax.bar(range(n), nprng.uniform(1, 10, n), color=plt.cm.tab10(nprng.integers(0, 10, n)))
        elif kind == "scatter":
            ax.scatter(nprng.normal(size=200), nprng.normal(size=200), c=nprng.uniform(size=200), s=12)
        elif kind == "pie":
            ax.pie(nprng.uniform(1, 5, rng.randint(3, 7)))
        else:
            ax.hist(nprng.normal(size=500), bins=rng.randint(10, 40))
        ax.set_title(" ".join(rng.choices(WORDS, k=3)))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        buffer.seek(0)
        with Image.open(buffer) as im:
            yield f"chart_{kind}_{i:02d}", im.convert("RGB")


def screenshots(rng: random.Random):
    for i in range(40):
        w, h = rng.choice([(1024, 768), (800, 600), (1280, 720)])
        theme_dark = rng.random() < 0.3
        bg = (40, 42, 46) if theme_dark else (rng.randint(230, 250),) * 3
        fg = (220, 220, 220) if theme_dark else (30, 30, 30)
        image = Image.new("RGB", (w, h), bg)
        draw = ImageDraw.Draw(image)
        accent = tuple(rng.randint(0, 200) for _ in range(3))
        draw.rectangle((0, 0, w, 32), fill=accent)
        draw.text((12, 8), " ".join(rng.choices(WORDS, k=3)).title(), fill=(255, 255, 255), font=_font(14, bold=True))
        side = rng.randint(150, 260)
        draw.rectangle((0, 32, side, h), fill=tuple(max(0, c - 15) for c in bg))
        for j in range(rng.randint(6, 14)):
            draw.text((14, 50 + 28 * j), rng.choice(WORDS).title(), fill=fg, font=_font(13))
        y = 50
        while y < h - 60:
            kind = rng.random()
            if kind < 0.3:
                draw.rounded_rectangle((side + 20, y, side + 140, y + 30), 6, fill=accent)
                draw.text((side + 32, y + 7), rng.choice(WORDS).title(), fill=(255, 255, 255), font=_font(13))
                y += 45
            elif kind < 0.6:
                draw.rectangle((side + 20, y, w - 30, y + 28), outline=fg, fill=bg)
                draw.text((side + 28, y + 6), " ".join(rng.choices(WORDS, k=4)), fill=fg, font=_font(12))
                y += 40
            else:
                draw.text((side + 20, y), " ".join(rng.choices(WORDS, k=rng.randint(5, 12))), fill=fg, font=_font(13))
                y += 24
        yield f"screenshot_{i:02d}", image


def noise(rng: random.Random):
    nprng = np.random.default_rng(2)
    for i in range(60):
        kind = i % 4
        size = (rng.choice([64, 128, 256]),) * 2
        if kind == 0:
            array = nprng.integers(0, 256, (*size, 3), dtype=np.uint8)
        elif kind == 1:
            array = np.clip(nprng.normal(rng.uniform(60, 200), rng.uniform(20, 70), (*size, 3)), 0, 255).astype(np.uint8)
        elif kind == 2:
            array = np.full((*size, 3), rng.randint(0, 255), np.uint8)
            mask = nprng.uniform(size=size)
            array[mask < 0.1] = 0
            array[mask > 0.9] = 255
        else:
            small = nprng.integers(0, 256, (rng.choice([4, 8, 16]),) * 2 + (3,), dtype=np.uint8)
            array = np.asarray(Image.fromarray(small).resize(size, Image.BICUBIC)
                               .filter(ImageFilter.GaussianBlur(2)))
        yield f"noise_{['uniform', 'gauss', 'saltpepper', 'blobs'][kind]}_{i:02d}", Image.fromarray(array)


def flat(rng: random.Random):
    for i in range(40):
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        yield f"flat_{i:02d}", Image.new("RGB", (128, 128), colour)
    for i in range(20):
        a, b = np.array([rng.randint(0, 255) for _ in range(3)]), np.array([rng.randint(0, 255) for _ in range(3)])
        t = np.linspace(0, 1, 128)[:, None, None]
        array = (a * (1 - t) + b * t).astype(np.uint8)
        array = np.broadcast_to(array, (128, 128, 3))
        if i % 2:
            array = array.transpose(1, 0, 2)
        yield f"gradient_{i:02d}", Image.fromarray(np.ascontiguousarray(array))


GROUPS = {"photos": photos, "faces": faces, "documents": documents, "charts": charts,
          "screenshots": screenshots, "noise": noise, "flat": flat}


def build(out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for group, make in GROUPS.items():
        rng = random.Random(f"cifar10-ood-{group}")
        n = 0
        for name, image in make(rng):
            image.save(out / f"{name}.png")
            n += 1
        counts[group] = n
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cifar10_ood"))
    args = parser.parse_args(argv)
    counts = build(args.out)
    print(f"{sum(counts.values())} images in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
