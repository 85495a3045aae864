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

  const state = { manifest: null, sessions: new Map(), model: null, items: [], runId: 0, results: [], lastModel: null,
                  downloads: new Map(), runtime: null, waiting: 0, phase: 'starting' };

  function setStatus(text, kind = '') {
    const el = $('#status');
    el.textContent = text;
    el.className = kind;
  }

  function pct(p) {
    return (100 * p).toFixed(1) + '%';
  }

  /** Bytes as the page says them: "18.7 MB", "0.4 MB", "12 KB". */
  function size(n) {
    return n >= 100e3 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} KB`;
  }

  /** "4.1 / 18.7 MB" */
  function progressText(received, total) {
    if (!total) return size(received);
    if (total >= 100e3) return `${(received / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
    return `${Math.round(received / 1e3)} / ${Math.max(1, Math.round(total / 1e3))} KB`;
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

  // --- downloads: the runtime (wasm) and the models, in parallel, with progress -------------------------

  /** A problem with a model file that the visitor (or the Space's owner) can act on. */
  class LoadError extends Error {}

  /** GET url as bytes, reporting {received, total} as it streams in. */
  function download(url, expected) {
    const job = { url, received: 0, total: expected || 0, done: false, error: null };
    job.promise = (async () => {
      let response;
      try {
        response = await fetch(url);
      } catch (err) {
        throw new LoadError(`could not download ${url} (${err.message || err}): check the connection and reload the page`);
      }
      if (!response.ok) {
        throw new LoadError(`${url} is missing from this Space (HTTP ${response.status}): upload it again ` +
                            '(cifar10 export-space, then git push or hf upload)');
      }
      const length = Number(response.headers.get('content-length')) || 0;
      if (!job.total) job.total = length;
      if (!response.body || !response.body.getReader) {
        const buffer = new Uint8Array(await response.arrayBuffer());
        job.received = buffer.length;
        return buffer;
      }
      const reader = response.body.getReader();
      const chunks = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        job.received += value.length;
        showLoading();
      }
      const bytes = new Uint8Array(job.received);
      let at = 0;
      for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
      return bytes;
    })();
    job.promise.then(() => { job.done = true; showLoading(); }, (err) => { job.error = err; showLoading(); });
    return job;
  }

  function runtimeJob() {
    if (!state.runtime) {
      state.runtime = download('ort/ort-wasm-simd-threaded.wasm', state.manifest.wasm_bytes);
      const job = state.runtime;
      job.promise.then((bytes) => { ort.env.wasm.wasmBinary = bytes; },
                       () => { if (state.runtime === job) state.runtime = null; }); // a later try starts over
    }
    return state.runtime;
  }

  function modelJob(model) {
    if (!state.downloads.has(model.name)) {
      const job = download(model.file, model.bytes);
      job.promise.catch(() => state.downloads.delete(model.name)); // a later try starts over
      state.downloads.set(model.name, job);
    }
    return state.downloads.get(model.name);
  }

  const LFS_MAGIC = 'version https:' + '//git-lfs'; // a Git LFS pointer's first line (no URL fetched)

  /** The bytes are the model, or a LoadError says what they are instead and what to do. */
  function checkModelBytes(model, bytes) {
    const head = new TextDecoder().decode(bytes.subarray(0, 64));
    if (head.startsWith(LFS_MAGIC)) {
      throw new LoadError(`the model file ${model.file} on this Space is a Git LFS pointer (${bytes.length} bytes), ` +
                          'not the model: it was pushed without Git LFS. In the Space\'s clone run ' +
                          '"git lfs install", then "git add --renormalize . && git commit -m lfs && git push" ' +
                          '(or upload the folder with "hf upload"); see docs/web.md');
    }
    if (model.bytes && bytes.length !== model.bytes) {
      throw new LoadError(`the model file ${model.file} is ${size(bytes.length)} but was exported as ` +
                          `${size(model.bytes)}: it is cut off or was replaced. Upload models/${model.name}.onnx again`);
    }
  }

  /** The model's InferenceSession: its file and the runtime download in parallel, then checked and opened once. */
  function getSession(model) {
    if (!state.sessions.has(model.name)) {
      const created = (async () => {
        const runtime = runtimeJob(), job = modelJob(model);
        const [, bytes] = await Promise.all([runtime.promise, job.promise]);
        checkModelBytes(model, bytes);
        try {
          return await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
        } catch (err) {
          throw new LoadError(`the model file ${model.file} could not be opened (${String(err.message || err).slice(0, 160)}): ` +
                              'it is damaged or not an ONNX model. Export the Space again and upload ' +
                              `models/${model.name}.onnx`);
        }
      })();
      created.then(() => { model.loaded = true; state.downloads.delete(model.name); showLoading(); }, // the bytes are in the session
                   () => { state.sessions.delete(model.name); state.downloads.delete(model.name); });
      state.sessions.set(model.name, created);
    }
    return state.sessions.get(model.name);
  }

  /** While the selected model (or the runtime) downloads: "Downloading model fast_cnn 4.1 / 7.9 MB · runtime
   * 3.2 / 14.2 MB", a progress bar, and how many uploads wait for it. */
  function showLoading() {
    const model = state.model;
    const bar = $('#progress');
    if (!model || state.phase !== 'loading') {
      bar.hidden = true;
      return;
    }
    const runtime = state.runtime, job = state.downloads.get(model.name);
    const parts = [];
    let received = 0, total = 0;
    for (const [what, j] of [[`model ${model.name}`, job], ['runtime', runtime]]) {
      if (!j) continue;
      received += j.received;
      total += Math.max(j.total, j.received);
      if (!j.done) parts.push(`${what} ${progressText(j.received, j.total)}`);
    }
    const waiting = state.waiting ? ` ${state.waiting} image(s) waiting for it.` : '';
    const text = parts.length ? `Downloading ${parts.join(' · ')}…` : `Starting the model ${model.name}…`;
    setStatus(text + waiting, 'busy');
    bar.hidden = false;
    bar.max = total || 1;
    bar.value = received;
  }

  /** Loads the selected model with the page saying how far it got; "Ready" only once it can classify. */
  async function loadSelected() {
    const model = state.model;
    state.phase = model.loaded ? 'ready' : 'loading';
    showLoading();
    try {
      const session = await getSession(model);
      if (state.model === model) {
        state.phase = 'ready';
        showLoading();
        if (!state.items.length) setStatus(`Ready: choose or drop images, or click an example (model ${model.name}).`, 'done');
      }
      return session;
    } catch (err) {
      if (state.model === model) {
        state.phase = 'failed';
        showLoading();
        setStatus(`Cannot use the model ${model.name}: ${err.message || err}`, 'error');
        document.body.dataset.loadError = model.name;
      }
      throw err;
    }
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

  /** Cards for uploads not classified yet: the picture and "waiting for the model" / "classifying". */
  function pendingCard(item, text) {
    const el = document.createElement('article');
    el.className = 'pending-card'; // not .card: '#results .card' means a result
    el.dataset.name = item.name;
    const picture = document.createElement('div');
    picture.className = 'picture';
    const img = document.createElement('img');
    img.alt = item.name;
    img.src = item.url;
    picture.appendChild(img);
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = item.name;
    const note = document.createElement('div');
    note.className = 'pending-note';
    note.textContent = text;
    el.append(picture, name, note);
    return el;
  }

  /** Brings the status line and the results under it into view when they start below the screen (phones). */
  function revealResults() {
    const box = $('#results').getBoundingClientRect();
    if (box.top > window.innerHeight * 0.7 || box.bottom < 0) {
      $('#status').scrollIntoView({ behavior: 'smooth', block: 'start' });
    }
  }

  async function run(fresh = false) {
    const runId = ++state.runId;
    const model = state.model;
    const items = state.items;
    if (!model || !items.length) return;
    const container = $('#results');
    container.setAttribute('aria-busy', 'true');
    if (model.loaded && state.phase !== 'ready') {
      state.phase = 'ready'; // another model's download may still run: its progress no longer speaks here
      showLoading();
    }
    if (fresh) {
      // New uploads: their thumbnails at once, classified as soon as the model is there.
      const note = model.loaded ? 'classifying…' : `waiting for the model ${model.name}…`;
      container.replaceChildren(...items.map((item) => pendingCard(item, note)));
      revealResults();
    } else {
      // Another model: the old cards stay, dimmed, until the new results replace them.
      container.querySelectorAll('.card').forEach((el) => el.classList.add('stale'));
    }
    try {
      if (!model.loaded) {
        state.waiting = items.length;
        showLoading();
        try {
          await loadSelected();
        } finally {
          if (runId === state.runId) state.waiting = 0;
        }
        if (runId !== state.runId) return;
      }
      setStatus(`Classifying ${items.length} image(s) with ${model.name}…`, 'busy');
      container.querySelectorAll('.pending-note').forEach((n) => { n.textContent = 'classifying…'; });
      const started = performance.now(); // after the download: the time is the classification's alone
      const results = await classifyBlobs(model, items);
      if (runId !== state.runId) return; // a newer upload or model change won
      state.results = results;
      state.lastModel = model;
      container.replaceChildren(...items.map((item, i) => {
        const el = card(item, results[i]);
        el.dataset.index = String(i);
        el.dataset.model = model.name;
        return el;
      }));
      const ok = results.filter((r) => !r.error).length;
      const ms = Math.round(performance.now() - started);
      const unsure = results.filter((r) => r.unsure).length;
      setStatus(`${ok} of ${results.length} image(s) classified with ${model.name} in ${ms} ms` +
                (unsure ? `; ${unsure} unsure (may be none of the classes).` : '.'), ok ? 'done' : 'error');
      if (fresh) revealResults();
      await updateHeatmaps();
    } catch (err) {
      if (runId !== state.runId) return;
      if (err instanceof LoadError) {
        container.querySelectorAll('.pending-note').forEach((n) => { n.textContent = 'not classified: the model could not be loaded'; });
      } else {
        setStatus(`Could not run the model ${model.name}: ${err.message || err}`, 'error');
      }
    } finally {
      if (runId === state.runId) container.removeAttribute('aria-busy');
    }
  }

  function useFiles(files) {
    state.items.forEach((item) => item.revoke && URL.revokeObjectURL(item.url));
    state.items = Array.from(files).map((file) => {
      const url = URL.createObjectURL(file);
      return { name: file.name, blob: file, url, revoke: true };
    });
    return run(true);
  }

  async function useExample(path) {
    const response = await fetch(path);
    const blob = await response.blob();
    state.items.forEach((item) => item.revoke && URL.revokeObjectURL(item.url));
    state.items = [{ name: path.split('/').pop(), blob, url: path, revoke: false }];
    return run(true);
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

  /** The first visit's download, said before it starts: the runtime and the first model (more on a metered line). */
  function showDownloadNote(model) {
    const note = $('#download-note');
    const runtime = state.manifest.wasm_bytes || 0;
    const total = runtime + (model.bytes || 0);
    if (!total) return;
    const conn = navigator.connection || {};
    const metered = !!(conn.saveData || conn.type === 'cellular' || /(^|-)(2g|3g)$/.test(conn.effectiveType || ''));
    note.textContent = `${metered ? 'On a mobile or metered connection: this' : 'This'} page downloads ${size(total)} ` +
      `once (the runtime ${size(runtime)} and the model ${model.name} ${size(model.bytes || 0)}); other models only ` +
      'when you pick them. Later visits use the browser\'s cache.';
    note.classList.toggle('metered', metered);
    note.hidden = false;
  }

  function openPicker() {
    $('#files').click();
  }

  function hasFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
  }

  function setupUi() {
    const select = $('#model');
    select.replaceChildren(...state.manifest.models.map((m) => {
      const option = document.createElement('option');
      option.value = m.name;
      option.textContent = `${m.name} — ${knowsOf(m)}` +
        (typeof m.test_accuracy === 'number' ? ` — ${pct(m.test_accuracy)}` : '') +
        (m.bytes ? ` — ${size(m.bytes)}` : '');
      return option;
    }));
    const wanted = new URLSearchParams(location.search).get('model');
    // The lightest good model first (export-space's choice: the smallest within a point of the best), others on demand.
    state.model = modelByName(wanted) || modelByName(state.manifest.default) || state.manifest.models[0] || null;
    if (!state.model) {
      setStatus('This Space has no models.', 'error');
      return;
    }
    select.value = state.model.name;
    select.disabled = false;
    showModelInfo(state.model);
    showDownloadNote(state.model);
    // A phone that moves from Wi-Fi to a mobile line while the first download runs: say so then too.
    if (navigator.connection && navigator.connection.addEventListener) {
      navigator.connection.addEventListener('change', () => {
        if (state.model && !state.model.loaded) showDownloadNote(state.model);
      });
    }
    $('#heatmap').addEventListener('change', () => updateHeatmaps());
    select.addEventListener('change', () => {
      state.model = modelByName(select.value);
      delete document.body.dataset.loadError;
      showModelInfo(state.model);
      if (!state.model.loaded && state.model.bytes) {
        $('#download-note').textContent = `The model ${state.model.name} downloads ${size(state.model.bytes)} once ` +
          '(later visits use the browser\'s cache).';
      }
      if (state.items.length) run();
      else loadSelected().catch(() => {});
    });

    $('#files').addEventListener('change', (event) => {
      const files = Array.from(event.target.files);
      event.target.value = ''; // choosing the same file again must fire 'change' again
      if (files.length) useFiles(files);
    });
    // The drop area is a <button>: click, Enter and Space open the file picker.
    const drop = $('#drop');
    drop.addEventListener('click', openPicker);
    // Files dropped anywhere on the page are classified (a drop outside would otherwise open the file and leave).
    let depth = 0;
    window.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      depth++;
      document.body.classList.add('dragging');
    });
    window.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) document.body.classList.remove('dragging');
    });
    window.addEventListener('dragover', (event) => {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    });
    window.addEventListener('drop', (event) => {
      event.preventDefault();
      depth = 0;
      document.body.classList.remove('dragging');
      if (event.dataTransfer && event.dataTransfer.files.length) useFiles(event.dataTransfer.files);
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
    // The file types browsers decode (export-space's list), from models.json.
    if (state.manifest.accept) document.getElementById('files').accept = state.manifest.accept;
    setupUi();
    if (!state.model) return false;
    // The runtime and the first model download in parallel from here on; uploads are taken meanwhile.
    runtimeJob();
    await loadSelected();
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
        await getSession(model);
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
