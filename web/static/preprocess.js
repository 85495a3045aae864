/*
 * Browser port of cifar10/preprocess.py `load_image`: any image file -> uint8 RGB [S, S, 3], S the model's
 * input size (models.json gives each model's `image_size`; 32 for the CIFAR-10 models, the default).
 *
 * The Python function is the reference; this file copies its *decisions*, and replicates the
 * arithmetic of the Pillow calls it makes, so that the static Space and `cifar10 classify` give
 * the same prediction for the same file:
 *
 *   Python (Pillow 10+)                               here
 *   ------------------------------------------------  ---------------------------------------------
 *   JPEG: im.draft(None, (3S, 3S)) -> libjpeg DCT      decode at full size, then an area average by
 *         scaling by 1/2, 1/4 or 1/8                   the same factor (what the DCT scaling
 *                                                      approximates; the only non-exact step)
 *   ImageOps.exif_transpose                            createImageBitmap(imageOrientation: 'from-image')
 *   alpha composited onto white                        canvas filled white, then drawImage
 *   ICC profiles not applied                           colorSpaceConversion: 'none'
 *   resize((S, S), BICUBIC, reducing_gap=3.0)          pillowResize(): Image.reduce() box step +
 *                                                      ImagingResample's separable bicubic with
 *                                                      Pillow's 22-bit fixed-point coefficients,
 *                                                      rounding and uint8 clipping between passes
 *
 * An SxS PNG therefore comes back pixel-identical, and a bigger PNG/WebP/BMP gives the same
 * bytes as Pillow as long as the browser's decoder gives the same pixels (it does for PNG).
 *
 * Pure functions (pillowResize, reduce, ...) work in Node too: module.exports when loaded there.
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.Cifar10Preprocess = api;
  }
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  const IMAGE_SIZE = 32;
  const REDUCING_GAP = 3.0;
  const MAX_PIXELS = 89478485; // cifar10.preprocess.MAX_PIXELS (Pillow's default bomb limit)
  const PRECISION_BITS = 32 - 8 - 2;
  const BICUBIC_SUPPORT = 2.0;

  class ImageError extends Error {
    constructor(message) {
      super(message);
      this.name = 'ImageError';
    }
  }

  // --- Pillow's resampling (src/libImaging/Resample.c), uint8 RGB, BICUBIC ------------------------

  function bicubicFilter(x) {
    const a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
  }

  // precompute_coeffs + normalize_coeffs_8bpc. in0/in1 are C floats, the rest doubles.
  function precomputeCoeffs(inSize, in0, in1, outSize) {
    in0 = Math.fround(in0);
    in1 = Math.fround(in1);
    const scale = Math.fround(in1 - in0) / outSize;
    const filterscale = scale < 1.0 ? 1.0 : scale;
    const support = BICUBIC_SUPPORT * filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const kk = new Int32Array(outSize * ksize);
    const bounds = new Int32Array(outSize * 2);
    const weights = new Float64Array(ksize);
    const invFilterscale = 1.0 / filterscale;
    const one = 1 << PRECISION_BITS;
    for (let xx = 0; xx < outSize; xx++) {
      const center = in0 + (xx + 0.5) * scale;
      let ww = 0.0;
      let xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      let xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      for (let x = 0; x < xmax; x++) {
        const w = bicubicFilter((x + xmin - center + 0.5) * invFilterscale);
        weights[x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) {
        const w = ww !== 0.0 ? weights[x] / ww : weights[x];
        kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * one) : Math.trunc(0.5 + w * one);
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { ksize, bounds, kk };
  }

  function clip8(ss) {
    const v = ss >> PRECISION_BITS; // ss fits in int32, as in C
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  function resampleHorizontal(src, width, offset, outW, outH, c) {
    const out = new Uint8Array(outW * outH * 3);
    const { ksize, bounds, kk } = c;
    const half = 1 << (PRECISION_BITS - 1);
    for (let yy = 0; yy < outH; yy++) {
      const row = (yy + offset) * width * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k = xx * ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0; x < xmax; x++) {
          const p = row + (x + xmin) * 3, w = kk[k + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        const o = (yy * outW + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  function resampleVertical(src, width, outH, c) {
    const out = new Uint8Array(width * outH * 3);
    const { ksize, bounds, kk } = c;
    const half = 1 << (PRECISION_BITS - 1);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k = yy * ksize;
      for (let xx = 0; xx < width; xx++) {
        let s0 = half, s1 = half, s2 = half;
        for (let y = 0; y < ymax; y++) {
          const p = ((y + ymin) * width + xx) * 3, w = kk[k + y];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        const o = (yy * width + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    return out;
  }

  // ImagingResampleInner: horizontal pass over the rows the vertical pass needs, then vertical.
  function resampleInner(img, outW, outH, box) {
    const b = box.map(Math.fround);
    const needH = outW !== img.width || b[0] !== 0 || b[2] !== outW;
    const needV = outH !== img.height || b[1] !== 0 || b[3] !== outH;
    const vert = precomputeCoeffs(img.height, b[1], b[3], outH);
    const yFirst = vert.bounds[0];
    const yLast = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
    let cur = img;
    if (needH) {
      const horiz = precomputeCoeffs(img.width, b[0], b[2], outW);
      for (let i = 0; i < outH; i++) vert.bounds[i * 2] -= yFirst;
      const rows = yLast - yFirst;
      cur = { width: outW, height: rows, data: resampleHorizontal(img.data, img.width, yFirst, outW, rows, horiz) };
    }
    if (needV) {
      return { width: cur.width, height: outH, data: resampleVertical(cur.data, cur.width, outH, vert) };
    }
    return { width: cur.width, height: cur.height, data: cur === img ? img.data.slice() : cur.data };
  }

  // Pillow's division_UINT32: the multiplier is computed in single precision.
  function reduceMultiplier(count) {
    return Math.trunc(Math.fround(4294967296 / Math.fround(256 * count)));
  }

  // Image.reduce((fx, fy)) on the whole image (src/libImaging/Reduce.c, incl. ReduceCorners):
  // every output pixel is the rounded mean of its fx*fy block, clipped at the right/bottom edge.
  function reduce(img, fx, fy) {
    const { width: w, height: h, data: src } = img;
    const outW = Math.ceil(w / fx), outH = Math.ceil(h / fy);
    const out = new Uint8Array(outW * outH * 3);
    for (let y = 0; y < outH; y++) {
      const y0 = y * fy, y1 = Math.min(y0 + fy, h);
      for (let x = 0; x < outW; x++) {
        const x0 = x * fx, x1 = Math.min(x0 + fx, w);
        const n = (y1 - y0) * (x1 - x0);
        const mult = reduceMultiplier(n);
        const amend = Math.trunc(n / 2);
        let s0 = amend, s1 = amend, s2 = amend;
        for (let yy = y0; yy < y1; yy++) {
          let p = (yy * w + x0) * 3;
          for (let xx = x0; xx < x1; xx++, p += 3) {
            s0 += src[p];
            s1 += src[p + 1];
            s2 += src[p + 2];
          }
        }
        const o = (y * outW + x) * 3;
        out[o] = Math.floor((s0 * mult) / 16777216);
        out[o + 1] = Math.floor((s1 * mult) / 16777216);
        out[o + 2] = Math.floor((s2 * mult) / 16777216);
      }
    }
    return { width: outW, height: outH, data: out };
  }

  // Image.resize((outW, outH), BICUBIC, reducing_gap=REDUCING_GAP) for an RGB image.
  function pillowResize(img, outW, outH, reducingGap = REDUCING_GAP) {
    if (img.width === outW && img.height === outH) {
      return { width: outW, height: outH, data: img.data.slice() };
    }
    let box = [0, 0, img.width, img.height];
    if (reducingGap) {
      const fx = Math.trunc(img.width / outW / reducingGap) || 1;
      const fy = Math.trunc(img.height / outH / reducingGap) || 1;
      if (fx > 1 || fy > 1) {
        // _get_safe_box is the whole image when box is the whole image.
        box = [0, 0, img.width / fx, img.height / fy];
        img = reduce(img, fx, fy);
      }
    }
    if (img.height > img.width * 100 && outH < img.height) {
      const tmp = resampleInner(img, img.width, outH, [0, box[1], img.width, box[3]]);
      return resampleInner(tmp, outW, outH, [box[0], 0, box[2], outH]);
    }
    return resampleInner(img, outW, outH, box);
  }

  // JpegImagePlugin.draft(None, (3S, 3S)): the DCT scale libjpeg would decode at (target = 3S: 96 at 32 px).
  function jpegDraftScale(width, height, target = Math.trunc(IMAGE_SIZE * REDUCING_GAP)) {
    const scale = Math.min(Math.floor(width / target), Math.floor(height / target));
    for (const s of [8, 4, 2, 1]) {
      if (scale >= s) return s;
    }
    return 1;
  }

  function rgbaToRgb(rgba, width, height) {
    const n = width * height;
    const out = new Uint8Array(n * 3);
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      out[i * 3] = rgba[j];
      out[i * 3 + 1] = rgba[j + 1];
      out[i * 3 + 2] = rgba[j + 2];
    }
    return out;
  }

  function checkSize(size) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`size must be a positive integer, not ${size}`);
    return size;
  }

  // From decoded pixels (already upright, alpha on white) to the model's SxS RGB (S = size, default 32).
  function fromDecoded(rgb, width, height, isJpeg, size = IMAGE_SIZE) {
    checkSize(size);
    let img = { width, height, data: rgb };
    if (isJpeg) {
      const s = jpegDraftScale(width, height, Math.trunc(size * REDUCING_GAP));
      if (s > 1) img = reduce(img, s, s);
    }
    return pillowResize(img, size, size).data;
  }

  // --- browser side ------------------------------------------------------------------------------

  function sniffJpeg(bytes) {
    return bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  }

  // --- what a browser cannot open, said plainly (before createImageBitmap's generic failure) -------------
  const MAX_FILE_BYTES = 50 * 1000 * 1000; // a 50 MB photo is far beyond what a phone camera writes
  // Formats Pillow (and so `cifar10 classify`) reads but browsers do not decode.
  const FOREIGN_SUFFIXES = {
    tif: 'TIFF', tiff: 'TIFF', ppm: 'PPM', pgm: 'PGM', pbm: 'PBM', pnm: 'PNM', tga: 'TGA', qoi: 'QOI',
    heic: 'HEIC', heif: 'HEIF', psd: 'Photoshop (PSD)', jp2: 'JPEG 2000', j2k: 'JPEG 2000', jxl: 'JPEG XL',
    dds: 'DDS', pcx: 'PCX', xbm: 'XBM', sgi: 'SGI', rgb: 'SGI', eps: 'EPS', icns: 'ICNS',
  };

  function ascii(bytes, start, end) {
    return String.fromCharCode(...bytes.subarray(start, end));
  }

  /** The name of a format browsers cannot decode, from the file's first bytes (else its suffix), or null. */
  function foreignFormat(head, name = '') {
    if ((head[0] === 0x49 && head[1] === 0x49 && head[2] === 0x2a && head[3] === 0)
        || (head[0] === 0x4d && head[1] === 0x4d && head[2] === 0 && head[3] === 0x2a)) return 'TIFF';
    if (head[0] === 0x50 && head[1] >= 0x31 && head[1] <= 0x37 && (head[2] === 0x0a || head[2] === 0x20
        || head[2] === 0x0d || head[2] === 0x09)) return ['PBM', 'PGM', 'PPM', 'PBM', 'PGM', 'PPM', 'PAM'][head[1] - 0x31];
    if (ascii(head, 0, 4) === 'qoif') return 'QOI';
    if (ascii(head, 0, 4) === '8BPS') return 'Photoshop (PSD)';
    if (ascii(head, 4, 8) === 'ftyp' && /^(heic|heix|hevc|mif1|msf1)/.test(ascii(head, 8, 12))) return 'HEIC';
    const suffix = (name.match(/\.([A-Za-z0-9]+)$/) || [])[1];
    return suffix ? FOREIGN_SUFFIXES[suffix.toLowerCase()] || null : null;
  }

  /** True when a JPEG, PNG or GIF stops before its end marker (a cut-off download or copy). */
  function isTruncated(bytes) {
    const n = bytes.length;
    if (n >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
      // EOI (FF D9) near the end; cameras may append a little data after it.
      for (let i = n - 2; i >= Math.max(2, n - 65536); i--) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return false;
      return true;
    }
    if (n >= 8 && bytes[0] === 0x89 && ascii(bytes, 1, 4) === 'PNG') {
      const tail = ascii(bytes, Math.max(0, n - 4096), n);
      return !tail.includes('IEND');
    }
    if (n >= 6 && ascii(bytes, 0, 3) === 'GIF') {
      let end = n - 1;
      while (end > 0 && bytes[end] === 0) end--; // some writers pad after the trailer
      return bytes[end] !== 0x3b; // the GIF trailer ';'
    }
    return false;
  }

  function megabytes(n) {
    return (n / 1e6).toFixed(1) + ' MB';
  }

  /** Throws an ImageError naming the problem for files no browser decodes, cut-off files and huge files. */
  async function checkFile(blob, name = '') {
    if (blob.size > MAX_FILE_BYTES) {
      throw new ImageError(`file too large: ${megabytes(blob.size)}, the limit is ${megabytes(MAX_FILE_BYTES)}`);
    }
    const head = new Uint8Array(await blob.slice(0, 16).arrayBuffer());
    const foreign = foreignFormat(head, name);
    if (foreign) {
      throw new ImageError(`unsupported format: ${foreign}. Browsers cannot open ${foreign} files; save it as ` +
                           'JPG or PNG (or use `cifar10 classify`, which reads it)');
    }
    if (isTruncated(new Uint8Array(await blob.arrayBuffer()))) {
      throw new ImageError('the file is cut off (truncated): it ends before the image does. Copy or download it again');
    }
  }

  async function decodeToCanvas(blob) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob, {
        imageOrientation: 'from-image',
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'default',
      });
    } catch (err) {
      throw new ImageError('not an image, or an unsupported format');
    }
    const { width, height } = bitmap;
    if (width < 1 || height < 1) {
      bitmap.close();
      throw new ImageError(`image has no pixels (${width}x${height})`);
    }
    if (width * height > MAX_PIXELS) {
      bitmap.close();
      throw new ImageError(`image too large: ${width}x${height} pixels, the limit is ${MAX_PIXELS.toLocaleString('en')}`);
    }
    const canvas = typeof OffscreenCanvas !== 'undefined'
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement('canvas'), { width, height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#ffffff'; // transparency is composited onto white, as in Python
    ctx.fillRect(0, 0, width, height);
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, width, height).data;
    return { width, height, rgba };
  }

  /** Blob/File -> Uint8Array(size*size*3) RGB, the same as cifar10.preprocess.load_image(blob, size). */
  async function loadImage(blob, size = IMAGE_SIZE) {
    checkSize(size);
    if (!blob || blob.size === 0) throw new ImageError('empty data: not an image');
    await checkFile(blob, blob.name || '');
    const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
    const { width, height, rgba } = await decodeToCanvas(blob);
    return fromDecoded(rgbaToRgb(rgba, width, height), width, height, sniffJpeg(head), size);
  }

  return {
    IMAGE_SIZE, REDUCING_GAP, MAX_PIXELS, MAX_FILE_BYTES, ImageError, foreignFormat, isTruncated, checkFile,
    bicubicFilter, precomputeCoeffs, reduce, pillowResize, jpegDraftScale, fromDecoded, rgbaToRgb,
    loadImage,
  };
});
