"""web/static/preprocess.js against Pillow, in Node (no browser): the resize must be bit-exact.

The static Space's JavaScript replicates ``Image.resize((S, S), BICUBIC, reducing_gap=3.0)``
(Image.reduce + Pillow's fixed-point separable convolution) and JPEG's draft scale choice, at the model's
input size S (32 for CIFAR-10; 64 and 128 tested for contract-v3 models). Random images of many shapes are
resized by both and compared byte for byte.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar10.preprocess import REDUCING_GAP, RESAMPLE, load_image

PREPROCESS_JS = Path(__file__).resolve().parents[1] / "web" / "static" / "preprocess.js"
NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js not installed (apt-get install -y nodejs)")

RUNNER = r"""
const P = require(process.argv[2]);
const fs = require('fs');
const cases = JSON.parse(fs.readFileSync(process.argv[3]));
const out = [];
for (const c of cases) {
  const data = new Uint8Array(fs.readFileSync(c.input));
  let result;
  const size = c.size || 32;
  if (c.op === 'resize') result = P.pillowResize({ width: c.w, height: c.h, data }, size, size).data;
  else if (c.size) result = P.fromDecoded(data, c.w, c.h, true, size);
  else result = P.fromDecoded(data, c.w, c.h, true);  // the default: 32
  fs.writeFileSync(c.output, Buffer.from(result));
  out.push({ draft: c.size ? P.jpegDraftScale(c.w, c.h, Math.trunc(size * 3)) : P.jpegDraftScale(c.w, c.h) });
}
console.log(JSON.stringify(out));
"""

SIZES = [(32, 32), (33, 31), (31, 33), (16, 16), (20, 50), (64, 64), (96, 96), (97, 95), (100, 75), (256, 256),
         (287, 191), (500, 375), (1000, 97), (25, 3000), (3, 700), (640, 480), (1920, 1080), (4000, 3000)]


def _texture(rng, w: int, h: int) -> np.ndarray:
    """Smooth structure plus noise, so both low and high frequencies are exercised."""
    base = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)).astype(np.int16)
    return np.clip(smooth + rng.integers(-40, 41, smooth.shape), 0, 255).astype(np.uint8)


def _run_node(tmp_path: Path, cases: list[dict]) -> list[dict]:
    runner = tmp_path / "runner.js"
    runner.write_text(RUNNER)
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    done = subprocess.run([NODE, str(runner), str(PREPROCESS_JS), str(spec)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("target", [32, 64, 128])
def test_resize_is_bit_exact_with_pillow(tmp_path, target):
    rng = np.random.default_rng(7)
    cases, expected = [], []
    for w, h in SIZES if target == 32 else SIZES[:-1]:  # (4000x3000 once is enough)
        image = _texture(rng, w, h)
        src = tmp_path / f"in_{w}x{h}.raw"
        image.tofile(src)
        cases.append({"op": "resize", "w": w, "h": h, "input": str(src), "output": str(tmp_path / f"out_{w}x{h}.raw"),
                      "size": target})
        ref = Image.fromarray(image)
        if ref.size != (target, target):
            ref = ref.resize((target, target), RESAMPLE, reducing_gap=REDUCING_GAP)
        expected.append(np.asarray(ref))
    _run_node(tmp_path, cases)
    for case, ref in zip(cases, expected):
        ours = np.fromfile(case["output"], np.uint8).reshape(target, target, 3)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() == 0, f"{case['w']}x{case['h']}: {np.count_nonzero(diff)} values differ (max {diff.max()})"


@pytest.mark.parametrize("size,target", [((256, 256), None), ((640, 480), None), ((1200, 1600), None),
                                         ((4000, 3000), None), ((150, 100), None), ((1200, 1600), 64),
                                         ((1600, 1200), 128), ((640, 480), 64)])
def test_jpeg_draft_approximation(tmp_path, size, target):
    """Python decodes big JPEGs at 1/2..1/8 scale (libjpeg DCT); the JS area-averages a full decode."""
    rng = np.random.default_rng(size[0])
    small = _texture(rng, 32, 32)  # photo-like: structure + noise (pure white noise is JPEG's worst case)
    buf = io.BytesIO()
    Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # what the browser decodes
    src = tmp_path / "full.raw"
    full.tofile(src)
    case = {"op": "jpeg", "w": size[0], "h": size[1], "input": str(src), "output": str(tmp_path / "out.raw")}
    (result,) = _run_node(tmp_path, [{**case, "size": target} if target else case])  # None: the JS default, 32
    side = target or 32
    draft = Image.open(io.BytesIO(data))
    draft.draft(None, (side * 3, side * 3))
    assert result["draft"] == size[0] // draft.size[0] or (result["draft"] == 1 and draft.size == size)
    ours = np.fromfile(tmp_path / "out.raw", np.uint8).reshape(side, side, 3).astype(int)
    diff = np.abs(ours - load_image(data, side).astype(int))
    # DCT-domain scaling is not exactly an area average: a few levels at most, well under 1 on average.
    assert diff.max() <= 4 and diff.mean() < 0.75, (diff.max(), diff.mean())


def test_file_checks_name_the_problem(tmp_path):
    """preprocess.js's checks before decoding: formats browsers cannot open (by magic bytes, else suffix),
    cut-off JPEG/PNG/GIF files, and files over 50 MB, each with its own message (issue 27)."""
    files = {}
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    for fmt, name in (("TIFF", "a.tif"), ("PPM", "a.ppm"), ("JPEG", "a.jpg"), ("PNG", "a.png"), ("GIF", "a.gif"),
                      ("TGA", "a.tga")):
        buf = io.BytesIO()
        image.save(buf, fmt)
        files[name] = buf.getvalue()
    files["renamed_tiff.jpg"] = files["a.tif"]                # the bytes decide, not the name
    files["cut.jpg"] = files["a.jpg"][: len(files["a.jpg"]) // 2]
    files["cut.png"] = files["a.png"][:-20]
    files["cut.gif"] = files["a.gif"][:-5]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    script = r"""
const P = require(process.argv[2]);
const fs = require('fs'), path = require('path');
(async () => {
  const out = {};
  for (const name of JSON.parse(process.argv[4])) {
    const blob = new Blob([fs.readFileSync(path.join(process.argv[3], name))]);
    try { await P.checkFile(blob, name); out[name] = 'ok'; } catch (e) { out[name] = `${e.name}: ${e.message}`; }
  }
  try { await P.checkFile(new Blob([new Uint8Array(P.MAX_FILE_BYTES + 1)]), 'huge.png'); out.huge = 'ok'; }
  catch (e) { out.huge = `${e.name}: ${e.message}`; }
  console.log(JSON.stringify(out));
})();
"""
    runner = tmp_path / "check.js"
    runner.write_text(script)
    done = subprocess.run([NODE, str(runner), str(PREPROCESS_JS), str(tmp_path), json.dumps(sorted(files))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["a.jpg"] == out["a.png"] == out["a.gif"] == "ok"
    assert out["a.tif"].startswith("ImageError: unsupported format: TIFF") and "JPG or PNG" in out["a.tif"]
    assert out["renamed_tiff.jpg"].startswith("ImageError: unsupported format: TIFF")
    assert out["a.ppm"].startswith("ImageError: unsupported format: PPM")
    assert out["a.tga"].startswith("ImageError: unsupported format: TGA")
    for name in ("cut.jpg", "cut.png", "cut.gif"):
        assert "cut off (truncated)" in out[name], (name, out[name])
    assert out["huge"].startswith("ImageError: file too large: 50.0 MB")
