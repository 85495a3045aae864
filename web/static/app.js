/*
 * The static Space: classify images in the browser with onnxruntime-web.
 *
 * models.json (written by `cifar10 export-space --kind static`) lists the models (ONNX + card),
 * the class names and the example images. Each model's InferenceSession is created once, on first
 * use, and kept. Images go through Cifar10Preprocess.loadImage (preprocess.js), the port of
 * cifar10.preprocess.load_image, then one batched run per upload.
 *
 * window.cifar10 is a small hook for tests and measurements (classifyUrls, preprocessUrl).
 */
(function () {
  'use strict';

  const P = window.Cifar10Preprocess;
  const PIXELS = P.IMAGE_SIZE * P.IMAGE_SIZE * 3;
  const BATCH = 64;
  const $ = (sel) => document.querySelector(sel);

  // Static hosting has no COOP/COEP headers, so no SharedArrayBuffer: one wasm thread, no proxy worker.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  ort.env.logLevel = 'error';

  const state = { manifest: null, sessions: new Map(), model: null, items: [], runId: 0 };

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

  /** images: Uint8Array(3072)[] -> Float32Array(10)[] (probabilities, CLASS_NAMES order). */
  async function predict(model, images) {
    const session = await getSession(model);
    const inputName = session.inputNames.includes('image') ? 'image' : session.inputNames[0];
    const outputName = session.outputNames.includes('probabilities') ? 'probabilities' : session.outputNames[0];
    const k = state.manifest.class_names.length;
    const results = [];
    for (let start = 0; start < images.length; start += BATCH) {
      const chunk = images.slice(start, start + BATCH);
      const data = new Float32Array(chunk.length * PIXELS);
      chunk.forEach((img, i) => data.set(img, i * PIXELS)); // raw 0..255 RGB, NHWC (the contract)
      const feeds = { [inputName]: new ort.Tensor('float32', data, [chunk.length, P.IMAGE_SIZE, P.IMAGE_SIZE, 3]) };
      const output = (await session.run(feeds))[outputName];
      for (let i = 0; i < chunk.length; i++) results.push(output.data.slice(i * k, (i + 1) * k));
      output.dispose && output.dispose();
    }
    return results;
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
        decoded.push({ image: await P.loadImage(item.blob) });
      } catch (err) {
        decoded.push({ error: err instanceof P.ImageError ? err.message : `cannot read this image (${err.message || err})` });
      }
    }
    const good = decoded.map((d, i) => (d.image ? i : -1)).filter((i) => i >= 0);
    const probs = good.length ? await predict(model, good.map((i) => decoded[i].image)) : [];
    const out = items.map((item, i) => ({ name: item.name, error: decoded[i].error || null }));
    good.forEach((i, row) => {
      const p = probs[row];
      const best = argmax(p);
      Object.assign(out[i], {
        label: state.manifest.class_names[best], index: best, confidence: p[best], probabilities: Array.from(p),
      });
    });
    return out;
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
    el.appendChild(img);
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
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = result.label;
    const conf = document.createElement('div');
    conf.className = 'confidence';
    conf.textContent = `confidence ${pct(result.confidence)}`;
    el.append(label, conf);
    const bars = document.createElement('div');
    bars.className = 'bars';
    state.manifest.class_names.forEach((cls, i) => {
      const p = result.probabilities[i];
      const row = document.createElement('div');
      row.className = 'bar-row' + (i === result.index ? ' top' : '');
      row.dataset.cls = cls;
      row.dataset.p = p.toFixed(6);
      row.innerHTML = '<span class="cls"></span><div class="track"><div class="bar"></div></div><span class="p"></span>';
      row.querySelector('.cls').textContent = cls;
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
      container.replaceChildren(...items.map((item, i) => card(item, results[i])));
      const ok = results.filter((r) => !r.error).length;
      const ms = Math.round(performance.now() - started);
      setStatus(`${ok} of ${results.length} image(s) classified with ${model.name} in ${ms} ms.`, ok ? 'done' : 'error');
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

  function showModelInfo(model) {
    const parts = [];
    if (typeof model.test_accuracy === 'number') parts.push(`test accuracy ${pct(model.test_accuracy)}`);
    if (model.summary) parts.push(model.summary);
    $('#model-info').textContent = parts.join(' — ');
  }

  function setupUi() {
    const select = $('#model');
    select.replaceChildren(...state.manifest.models.map((m) => {
      const option = document.createElement('option');
      option.value = m.name;
      option.textContent = typeof m.test_accuracy === 'number' ? `${m.name} — ${pct(m.test_accuracy)} test accuracy` : m.name;
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
        results.forEach((r) => out.push({ label: r.label || null, index: r.index ?? -1, error: r.error,
                                          confidence: r.confidence ?? null }));
      }
      return out;
    },
    /** The 32x32x3 uint8 model input for an image URL, as a plain array. */
    async preprocessUrl(url) {
      return Array.from(await P.loadImage(await fetchBlob(url)));
    },
  };
})();
