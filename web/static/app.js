/*
 * The static Space: classify images in the browser with onnxruntime-web.
 *
 * models.json (written by `cifar10 export-space --kind static`) lists the models (ONNX + card) with what
 * each one knows (contract v3: its class names, the labels shown, its input size and dataset; a manifest
 * without them, or a v1/v2 model, means CIFAR-10's ten classes at 32 px) and the example images. Each model's InferenceSession is created once, on first
 * use, and kept. Images go through Cifar10Preprocess.loadImage (preprocess.js), the port of
 * cifar10.preprocess.load_image, then one batched run per upload.
 *
 * Contract v2 models (issue 12) also give `ood_score` (with the card's threshold: the "unsure: may be none
 * of the 10 classes" state) and, when their head is global pooling + Dense, `cam` (class activation maps).
 * The heatmap toggle shows the CAM over each picture, or occlusion sensitivity (49 occluded copies of the
 * model's input, run in batches between awaits) for models without a `cam` output.
 *
 * window.cifar10 is a small hook for tests and measurements (classifyUrls, preprocessUrl).
 */
(function () {
  'use strict';

  const P = window.Cifar10Preprocess;
  const BATCH = 64;
  const MAX_BARS = 12, TOP_BARS = 10; // web.common.bars: every class up to 12, else the top 10 and "other"
  const $ = (sel) => document.querySelector(sel);

  // Static hosting has no COOP/COEP headers, so no SharedArrayBuffer: one wasm thread, no proxy worker.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  ort.env.logLevel = 'error';

  const state = { manifest: null, sessions: new Map(), model: null, items: [], runId: 0, results: [], lastModel: null };

  function setStatus(text, kind = '') {
    const el = $('#status');
    el.textContent = text;
    el.className = kind;
  }

  function pct(p) {
    return (100 * p).toFixed(1) + '%';
  }

  function modelByName(name) {
    return state.manifest.models.find((m) => m.name === name) || null;
  }

  /** The class names the model's results show (display names, else class names), in output order. */
  function labelsOf(model) {
    return model.labels || model.class_names || state.manifest.class_names;
  }

  /** The model's input side S (the images are decoded to S x S). */
  function sizeOf(model) {
    return model.image_size || state.manifest.image_size || P.IMAGE_SIZE;
  }

  function knowsOf(model) {
    return model.knows || `${model.dataset || 'CIFAR-10'} · ${labelsOf(model).length} classes`;
  }

  function getSession(model) {
    if (!state.sessions.has(model.name)) {
      const created = ort.InferenceSession.create(model.file, {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      created.catch(() => state.sessions.delete(model.name)); // let a later try start over
      state.sessions.set(model.name, created);
    }
    return state.sessions.get(model.name);
  }

  /**
   * images: Uint8Array(S*S*3)[] (or Float32Array) -> [{probabilities: Float32Array(C), oodScore, cam}]
   * (the model's class order). oodScore is NaN and cam null for outputs the model does not have (contract v1);
   * cam is {h, w, data: Float32Array(h*w*C)} and is only fetched when withCam.
   */
  async function predictAll(model, images, withCam = false) {
    const session = await getSession(model);
    const inputName = session.inputNames.includes('image') ? 'image' : session.inputNames[0];
    const outputName = session.outputNames.includes('probabilities') ? 'probabilities' : session.outputNames[0];
    const wanted = [outputName];
    if (session.outputNames.includes('ood_score')) wanted.push('ood_score');
    if (withCam && session.outputNames.includes('cam')) wanted.push('cam');
    const k = labelsOf(model).length;
    const S = sizeOf(model);
    const pixels = S * S * 3;
    const results = [];
    for (let start = 0; start < images.length; start += BATCH) {
      const chunk = images.slice(start, start + BATCH);
      const data = new Float32Array(chunk.length * pixels);
      chunk.forEach((img, i) => data.set(img, i * pixels)); // raw 0..255 RGB, NHWC (the contract)
      const feeds = { [inputName]: new ort.Tensor('float32', data, [chunk.length, S, S, 3]) };
      const outputs = await session.run(feeds, wanted);
      const probs = outputs[outputName];
      const score = outputs.ood_score;
      const cam = outputs.cam;
      for (let i = 0; i < chunk.length; i++) {
        const item = { probabilities: probs.data.slice(i * k, (i + 1) * k), oodScore: score ? score.data[i] : NaN, cam: null };
        if (cam) {
          const [, h, w] = cam.dims;
          item.cam = { h, w, data: cam.data.slice(i * h * w * k, (i + 1) * h * w * k) };
        }
        results.push(item);
      }
      Object.values(outputs).forEach((t) => t.dispose && t.dispose());
    }
    return results;
  }

  /** images -> Float32Array(10)[] (probabilities only). */
  async function predict(model, images) {
    return (await predictAll(model, images)).map((r) => r.probabilities);
  }

  // --- heatmaps (cifar10/heatmap.py's port) ------------------------------------------------------------
  const PATCH32 = 8, STRIDE32 = 4, GREY = 128;

  function normalise(heat) {
    let lo = Infinity, hi = -Infinity;
    for (const v of heat) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = hi - lo;
    return heat.map((v) => (span > 0 ? (v - lo) / span : 0));
  }

  /** The class's CAM ([h, w], negative evidence cut at 0, scaled 0..1). */
  function camHeat(cam, classIndex) {
    const k = cam.data.length / (cam.h * cam.w);
    const heat = new Float32Array(cam.h * cam.w);
    for (let i = 0; i < heat.length; i++) heat[i] = Math.max(0, cam.data[i * k + classIndex]);
    return { h: cam.h, w: cam.w, heat: normalise(heat), method: 'cam' };
  }

  /** Occlusion sensitivity on the model's S x S input: mean drop of the class's probability per pixel, 0..1.
   * The occluder scales with S (8 and 4 px at 32: 49 positions at any size), as cifar10/heatmap.py. */
  async function occlusionHeat(model, image, classIndex) {
    const S = sizeOf(model);
    const PATCH = Math.max(1, Math.floor(S * PATCH32 / 32)), STRIDE = Math.max(1, Math.floor(S * STRIDE32 / 32));
    const positions = [];
    for (let y = 0; y + PATCH <= S; y += STRIDE) for (let x = 0; x + PATCH <= S; x += STRIDE) positions.push([y, x]);
    const copies = [Float32Array.from(image)];
    for (const [y, x] of positions) {
      const copy = Float32Array.from(image);
      for (let yy = y; yy < y + PATCH; yy++) for (let xx = x; xx < x + PATCH; xx++) copy.fill(GREY, (yy * S + xx) * 3, (yy * S + xx) * 3 + 3);
      copies.push(copy);
    }
    const probs = await predict(model, copies);
    const base = probs[0][classIndex];
    const drop = new Float32Array(S * S), count = new Float32Array(S * S);
    positions.forEach(([y, x], n) => {
      const d = Math.max(0, base - probs[n + 1][classIndex]);
      for (let yy = y; yy < y + PATCH; yy++) for (let xx = x; xx < x + PATCH; xx++) { drop[yy * S + xx] += d; count[yy * S + xx] += 1; }
    });
    return { h: S, w: S, heat: normalise(drop.map((v, i) => v / Math.max(1, count[i]))), method: 'occlusion' };
  }

  /** (row, col) of the hottest cell, in S x S input coordinates (a cell's centre for a coarse CAM). */
  function heatPeak(h, S) {
    let best = 0;
    for (let i = 1; i < h.heat.length; i++) if (h.heat[i] > h.heat[best]) best = i;
    const row = Math.floor(best / h.w), col = best % h.w;
    return [Math.floor((row + 0.5) * S / h.h), Math.floor((col + 0.5) * S / h.w)];
  }

  const RAMP = [[0, 0, 128], [0, 128, 255], [0, 230, 230], [255, 230, 0], [255, 64, 0], [200, 0, 0]];

  function heatCanvas(h) {
    const canvas = document.createElement('canvas');
    canvas.className = 'heat';
    canvas.width = h.w;
    canvas.height = h.h;
    const ctx = canvas.getContext('2d');
    const pixels = ctx.createImageData(h.w, h.h);
    h.heat.forEach((v, i) => {
      const pos = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
      const lo = Math.min(RAMP.length - 2, Math.floor(pos)), f = pos - lo;
      for (let c = 0; c < 3; c++) pixels.data[i * 4 + c] = RAMP[lo][c] * (1 - f) + RAMP[lo + 1][c] * f;
      pixels.data[i * 4 + 3] = Math.round(255 * 0.55 * Math.sqrt(Math.max(0, v)));
    });
    ctx.putImageData(pixels, 0, 0);
    return canvas; // scaled up smoothly by the browser over the picture (CSS 100% x 100%)
  }

  async function addHeatmap(el, model, result) {
    if (!result.image || el.querySelector('canvas.heat')) return;
    const h = result.cam ? camHeat(result.cam, result.index) : await occlusionHeat(model, result.image, result.index);
    const [row, col] = heatPeak(h, sizeOf(model));
    el.dataset.heatMethod = h.method;
    el.dataset.heatPeak = `${row},${col}`;
    el.querySelector('.picture').appendChild(heatCanvas(h));
    const note = document.createElement('div');
    note.className = 'heat-note';
    note.textContent = `heatmap for ${result.label}: ${h.method === 'cam' ? 'class activation map' : 'occlusion sensitivity'}`;
    el.querySelector('.picture').after(note);
  }

  async function updateHeatmaps() {
    const runId = state.runId;
    const on = $('#heatmap').checked;
    const cards = Array.from(document.querySelectorAll('#results .card'));
    if (!on) {
      cards.forEach((el) => {
        el.querySelectorAll('canvas.heat, .heat-note').forEach((n) => n.remove());
        delete el.dataset.heatMethod;
        delete el.dataset.heatPeak;
      });
      $('#results').dataset.heatmaps = 'off';
      return;
    }
    $('#results').dataset.heatmaps = 'busy';
    for (const el of cards) {
      if (runId !== state.runId) return;
      const result = state.results[Number(el.dataset.index)];
      if (result && !result.error) await addHeatmap(el, state.lastModel, result);
    }
    if (runId === state.runId) $('#results').dataset.heatmaps = 'done';
  }

  function unsureText(classes) {
    return `unsure: may be none of the ${classes.length} classes`;
  }

  function argmax(values) {
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return best;
  }

  /** items: [{name, blob}] -> [{name, label, index, confidence, probabilities, error}] */
  async function classifyBlobs(model, items) {
    // One image at a time: a dozen 12-megapixel photos decoded at once would need gigabytes.
    const decoded = [];
    for (const item of items) {
      try {
        decoded.push({ image: await P.loadImage(item.blob, sizeOf(model)) });
      } catch (err) {
        decoded.push({ error: err instanceof P.ImageError ? err.message : `cannot read this image (${err.message || err})` });
      }
    }
    const good = decoded.map((d, i) => (d.image ? i : -1)).filter((i) => i >= 0);
    const preds = good.length ? await predictAll(model, good.map((i) => decoded[i].image), true) : [];
    const classes = labelsOf(model);
    const out = items.map((item, i) => ({ name: item.name, error: decoded[i].error || null, classes }));
    const threshold = typeof model.open_set_threshold === 'number' ? model.open_set_threshold : null;
    good.forEach((i, row) => {
      const p = preds[row].probabilities;
      const best = argmax(p);
      const score = preds[row].oodScore;
      Object.assign(out[i], {
        label: classes[best], index: best, confidence: p[best], probabilities: Array.from(p),
        oodScore: Number.isFinite(score) ? score : null,
        unsure: threshold !== null && Number.isFinite(score) && score > threshold,
        cam: preds[row].cam, image: decoded[i].image,
      });
    });
    return out;
  }

  /** [class, probability, index] per bar, in class order: every class up to MAX_BARS; beyond, the TOP_BARS most
   * likely and ["other (N classes)", their summed probability, -1] (web.common.bars). */
  function barRows(result) {
    const rows = result.classes.map((cls, i) => [cls, result.probabilities[i], i]);
    if (rows.length <= MAX_BARS) return rows;
    const keep = new Set(rows.slice().sort((a, b) => b[1] - a[1] || a[2] - b[2]).slice(0, TOP_BARS).map((r) => r[2]));
    const rest = rows.filter((r) => !keep.has(r[2]));
    return rows.filter((r) => keep.has(r[2])).concat([[`other (${rest.length} classes)`,
      rest.reduce((sum, r) => sum + r[1], 0), -1]]);
  }

  function card(item, result) {
    const el = document.createElement('article');
    el.className = 'card';
    el.dataset.name = item.name;
    const img = document.createElement('img');
    img.alt = item.name;
    img.addEventListener('load', () => {
      // CIFAR-sized images: show them bigger, with crisp pixels, instead of as a 32 px speck.
      if (img.naturalWidth && img.naturalWidth < 160 && img.naturalHeight < 160) {
        const zoom = Math.floor(160 / Math.max(img.naturalWidth, img.naturalHeight)) || 1;
        img.style.width = `${img.naturalWidth * zoom}px`;
        img.style.imageRendering = 'pixelated';
      }
    });
    img.src = item.url;
    const picture = document.createElement('div');
    picture.className = 'picture';
    picture.appendChild(img);
    el.appendChild(picture);
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = item.name;
    name.title = item.name;
    el.appendChild(name);
    if (result.error) {
      img.classList.add('broken');
      const err = document.createElement('div');
      err.className = 'error';
      err.textContent = `Could not classify this file: ${result.error}`;
      el.appendChild(err);
      el.dataset.error = result.error;
      return el;
    }
    el.dataset.label = result.label;
    el.dataset.confidence = result.confidence.toFixed(6);
    el.dataset.unsure = result.unsure ? 'true' : 'false';
    if (result.oodScore !== null) el.dataset.oodScore = result.oodScore.toFixed(6);
    const label = document.createElement('div');
    label.className = 'label';
    const conf = document.createElement('div');
    conf.className = 'confidence';
    if (result.unsure) {
      el.classList.add('unsure');
      label.textContent = unsureText(result.classes);
      conf.textContent = `most like ${result.label} · ${pct(result.confidence)}`;
    } else {
      label.textContent = result.label;
      conf.textContent = `confidence ${pct(result.confidence)}`;
    }
    el.append(label, conf);
    const bars = document.createElement('div');
    bars.className = 'bars';
    barRows(result).forEach(([cls, p, i]) => {
      const row = document.createElement('div');
      row.className = 'bar-row' + (i === result.index ? ' top' : '') + (i < 0 ? ' other' : '');
      row.dataset.cls = cls;
      row.dataset.p = p.toFixed(6);
      row.innerHTML = '<span class="cls"></span><div class="track"><div class="bar"></div></div><span class="p"></span>';
      row.querySelector('.cls').textContent = cls;
      row.querySelector('.cls').title = cls;
      row.querySelector('.bar').style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
      row.querySelector('.p').textContent = pct(p);
      bars.appendChild(row);
    });
    el.appendChild(bars);
    return el;
  }

  async function run() {
    const runId = ++state.runId;
    const model = state.model;
    const items = state.items;
    if (!model || !items.length) return;
    setStatus(`Classifying ${items.length} image(s) with ${model.name}…`, 'busy');
    $('#results').setAttribute('aria-busy', 'true');
    try {
      const started = performance.now();
      const results = await classifyBlobs(model, items);
      if (runId !== state.runId) return; // a newer upload or model change won
      const container = $('#results');
      state.results = results;
      state.lastModel = model;
      container.replaceChildren(...items.map((item, i) => {
        const el = card(item, results[i]);
        el.dataset.index = String(i);
        return el;
      }));
      const ok = results.filter((r) => !r.error).length;
      const ms = Math.round(performance.now() - started);
      const unsure = results.filter((r) => r.unsure).length;
      setStatus(`${ok} of ${results.length} image(s) classified with ${model.name} in ${ms} ms` +
                (unsure ? `; ${unsure} unsure (may be none of the classes).` : '.'), ok ? 'done' : 'error');
      await updateHeatmaps();
    } catch (err) {
      if (runId === state.runId) setStatus(`Could not run the model ${model.name}: ${err.message || err}`, 'error');
    } finally {
      if (runId === state.runId) $('#results').removeAttribute('aria-busy');
    }
  }

  function useFiles(files) {
    state.items.forEach((item) => item.revoke && URL.revokeObjectURL(item.url));
    state.items = Array.from(files).map((file) => {
      const url = URL.createObjectURL(file);
      return { name: file.name, blob: file, url, revoke: true };
    });
    return run();
  }

  async function useExample(path) {
    const response = await fetch(path);
    const blob = await response.blob();
    state.items.forEach((item) => item.revoke && URL.revokeObjectURL(item.url));
    state.items = [{ name: path.split('/').pop(), blob, url: path, revoke: false }];
    return run();
  }

  /** The intro names the selected model's dataset, classes and input size. */
  function showIntro(model) {
    const labels = labelsOf(model), S = sizeOf(model);
    $('#intro-dataset').textContent = model.dataset || 'CIFAR-10';
    $('#intro-count').textContent = String(labels.length);
    $('#intro-classes').textContent = labels.join(', ');
    $('#intro-size').textContent = `${S}×${S}`;
    document.body.dataset.imageSize = String(S);
  }

  function showModelInfo(model) {
    showIntro(model);
    const parts = [`knows ${knowsOf(model)} at ${sizeOf(model)} px`];
    if (typeof model.test_accuracy === 'number') parts.push(`test accuracy ${pct(model.test_accuracy)}`);
    if (model.summary) parts.push(model.summary);
    $('#model-info').textContent = parts.join(' — ');
  }

  function setupUi() {
    const select = $('#model');
    select.replaceChildren(...state.manifest.models.map((m) => {
      const option = document.createElement('option');
      option.value = m.name;
      option.textContent = `${m.name} — ${knowsOf(m)}` +
        (typeof m.test_accuracy === 'number' ? ` — ${pct(m.test_accuracy)} test accuracy` : '');
      return option;
    }));
    const wanted = new URLSearchParams(location.search).get('model');
    state.model = modelByName(wanted) || state.manifest.models[0] || null;
    if (!state.model) {
      setStatus('This Space has no models.', 'error');
      return;
    }
    select.value = state.model.name;
    select.disabled = false;
    showModelInfo(state.model);
    $('#heatmap').addEventListener('change', () => updateHeatmaps());
    select.addEventListener('change', () => {
      state.model = modelByName(select.value);
      showModelInfo(state.model);
      run();
    });

    $('#files').addEventListener('change', (event) => {
      const files = Array.from(event.target.files);
      event.target.value = ''; // choosing the same file again must fire 'change' again
      if (files.length) useFiles(files);
    });
    const drop = $('#drop');
    drop.addEventListener('dragover', (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (event) => {
      event.preventDefault();
      drop.classList.remove('over');
      if (event.dataTransfer.files.length) useFiles(event.dataTransfer.files);
    });

    const samples = state.manifest.samples || [];
    if (samples.length) {
      const grid = $('#examples .example-grid');
      grid.replaceChildren(...samples.map((path) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'example';
        button.title = path.split('/').pop();
        button.dataset.path = path;
        const img = document.createElement('img');
        img.src = path;
        img.alt = button.title;
        button.appendChild(img);
        button.addEventListener('click', () => useExample(path));
        return button;
      }));
      $('#examples').hidden = false;
    }
    setStatus('Ready: choose or drop images, or click an example.');
  }

  // --- hooks for tests / measurements ---------------------------------------------------------------

  async function fetchBlob(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.blob();
  }

  const ready = (async () => {
    try {
      const response = await fetch('models.json', { cache: 'no-cache' });
      state.manifest = await response.json();
    } catch (err) {
      setStatus(`Could not load models.json: ${err.message || err}`, 'error');
      throw err;
    }
    // The file types the apps open (cifar10.preprocess.IMAGE_SUFFIXES), from models.json.
    if (state.manifest.accept) document.getElementById('files').accept = state.manifest.accept;
    setupUi();
    if (state.model) await getSession(state.model); // warm up: the first click is then instant
    return true;
  })();

  window.cifar10 = {
    ready,
    state,
    /** Classify image URLs with a model (default: the selected one); no rendering. */
    async classifyUrls(urls, modelName) {
      await ready;
      const model = modelName ? modelByName(modelName) : state.model;
      if (!model) throw new Error(`no model named ${modelName}`);
      const out = [];
      for (let start = 0; start < urls.length; start += BATCH) {
        const chunk = urls.slice(start, start + BATCH);
        const items = await Promise.all(chunk.map(async (url) => ({ name: url, blob: await fetchBlob(url) })));
        const results = await classifyBlobs(model, items);
        results.forEach((r) => out.push({ label: r.label || null, index: r.index ?? -1, error: r.error, classes: r.classes,
                                          confidence: r.confidence ?? null, unsure: !!r.unsure,
                                          oodScore: r.oodScore ?? null }));
      }
      return out;
    },
    /** The S x S x 3 uint8 model input for an image URL, as a plain array: S = the size given, else the named
     * model's input size, else the selected model's. */
    async preprocessUrl(url, sizeOrModel) {
      await ready;
      const model = typeof sizeOrModel === 'string' ? modelByName(sizeOrModel) : state.model;
      const size = typeof sizeOrModel === 'number' ? sizeOrModel : (model ? sizeOf(model) : P.IMAGE_SIZE);
      return Array.from(await P.loadImage(await fetchBlob(url), size));
    },
  };
})();
