"""Regenerate the app icon: resources/icon.png (256 px), icon.ico (Windows, 16-256 px) and icon.svg.

The design: a blue rounded square holding a 4x4 "tiny image" mosaic (CIFAR's 32x32 world) above
three probability bars, the longest one highlighted. Drawn with Pillow, supersampled 4x for smooth edges.

    python resources/make_icon.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SIZE = 256
BACKGROUND_TOP, BACKGROUND_BOTTOM = (34, 86, 160), (24, 52, 104)
MOSAIC = [  # a little landscape: sky, sun, hills, ground
    ["#8ecae6", "#8ecae6", "#ffd166", "#8ecae6"],
    ["#8ecae6", "#219ebc", "#8ecae6", "#8ecae6"],
    ["#52b788", "#2d6a4f", "#52b788", "#40916c"],
    ["#b5838d", "#6d597a", "#b5838d", "#e5989b"],
]
TRACK = "#4a6fa8"  # bar track: opaque, a lighter shade of the background
BARS = [(0.82, "#ffd166"), (0.45, "#d8e2ef"), (0.22, "#d8e2ef")]


def draw(size: int = SIZE) -> Image.Image:
    scale = 4
    s = size * scale
    image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    gradient = Image.new("RGBA", (1, s))
    for y in range(s):
        t = y / (s - 1)
        gradient.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(BACKGROUND_TOP, BACKGROUND_BOTTOM))
                          + (255,))
    gradient = gradient.resize((s, s))
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0.04 * s, 0.04 * s, 0.96 * s, 0.96 * s), radius=0.2 * s, fill=255)
    image.paste(gradient, (0, 0), mask)
    d = ImageDraw.Draw(image)
    left, top, cell, gap = 0.22 * s, 0.14 * s, 0.13 * s, 0.012 * s
    for r, row in enumerate(MOSAIC):
        for c, colour in enumerate(row):
            x, y = left + c * (cell + gap), top + r * (cell + gap)
            d.rounded_rectangle((x, y, x + cell, y + cell), radius=0.015 * s, fill=colour)
    bar_left, bar_top, bar_h, bar_gap, bar_max = 0.22 * s, 0.72 * s, 0.045 * s, 0.025 * s, 0.56 * s
    for i, (value, colour) in enumerate(BARS):
        y = bar_top + i * (bar_h + bar_gap)
        d.rounded_rectangle((bar_left, y, bar_left + bar_max, y + bar_h), radius=bar_h / 2, fill=TRACK)
        d.rounded_rectangle((bar_left, y, bar_left + bar_max * value, y + bar_h), radius=bar_h / 2, fill=colour)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def svg() -> str:
    s = 256
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{s}" height="{s}" viewBox="0 0 {s} {s}">',
             '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
             f'<stop offset="0" stop-color="rgb{BACKGROUND_TOP}"/><stop offset="1" stop-color="rgb{BACKGROUND_BOTTOM}"/>'
             '</linearGradient></defs>',
             f'<rect x="{0.04 * s:g}" y="{0.04 * s:g}" width="{0.92 * s:g}" height="{0.92 * s:g}" rx="{0.2 * s:g}" '
             'fill="url(#bg)"/>']
    left, top, cell, gap = 0.22 * s, 0.14 * s, 0.13 * s, 0.012 * s
    for r, row in enumerate(MOSAIC):
        for c, colour in enumerate(row):
            parts.append(f'<rect x="{left + c * (cell + gap):.2f}" y="{top + r * (cell + gap):.2f}" width="{cell:.2f}" '
                         f'height="{cell:.2f}" rx="{0.015 * s:.2f}" fill="{colour}"/>')
    bar_left, bar_top, bar_h, bar_gap, bar_max = 0.22 * s, 0.72 * s, 0.045 * s, 0.025 * s, 0.56 * s
    for i, (value, colour) in enumerate(BARS):
        y = bar_top + i * (bar_h + bar_gap)
        parts.append(f'<rect x="{bar_left:.2f}" y="{y:.2f}" width="{bar_max:.2f}" height="{bar_h:.2f}" '
                     f'rx="{bar_h / 2:.2f}" fill="{TRACK}"/>')
        parts.append(f'<rect x="{bar_left:.2f}" y="{y:.2f}" width="{bar_max * value:.2f}" height="{bar_h:.2f}" '
                     f'rx="{bar_h / 2:.2f}" fill="{colour}"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    icon = draw()
    icon.save(HERE / "icon.png", optimize=True)
    icon.save(HERE / "icon.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    (HERE / "icon.svg").write_text(svg())
    for name in ("icon.png", "icon.ico", "icon.svg"):
        print(HERE / name)


if __name__ == "__main__":
    main()
