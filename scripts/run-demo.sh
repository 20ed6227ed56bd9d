#!/usr/bin/env bash
# Runs the demo on an already-built tree: describes the default model, then streams text from it.
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/default/rwkv7-kjv-byte.pth
echo "== rwkvrt info $model"
./build/bin/rwkvrt info "$model"
echo
echo "== rwkvrt generate --prompt 'And God said' (sampled: temperature 0.8, top-p 0.9, seed 42)"
stats=$(mktemp)
trap 'rm -f "$stats"' EXIT
./build/bin/rwkvrt generate -m "$model" --prompt "And God said" --max-tokens 400 \
  --temperature 0.8 --top-p 0.9 --seed 42 --stats 2>"$stats"
echo
echo
cat "$stats"
echo "Try: build/bin/rwkvrt chat     or     build/bin/rwkvrt generate --help"
