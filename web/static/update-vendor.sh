#!/bin/sh
# Refresh vendor/onnxruntime-web from the npm registry (versions pinned by package-lock.json).
# Run after changing the onnxruntime-web version in package.json; commit vendor/ afterwards.
# The exported static Space only needs these three files; nothing is fetched at run time.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
dist=node_modules/onnxruntime-web/dist
out=vendor/onnxruntime-web
rm -rf "$out" && mkdir -p "$out"
cp "$dist/ort.wasm.min.js" "$dist/ort-wasm-simd-threaded.mjs" "$dist/ort-wasm-simd-threaded.wasm" "$out/"
node -e 'const p=require("./node_modules/onnxruntime-web/package.json");console.log(JSON.stringify({package:p.name,version:p.version,license:p.license,files:["ort.wasm.min.js","ort-wasm-simd-threaded.mjs","ort-wasm-simd-threaded.wasm"]},null,1))' > "$out/VERSION.json"
ls -l "$out"
