#!/usr/bin/env bash
# Runs the demo on an already-built tree: shows the default model, then streams text from it.
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/default/rwkv7-kjv-byte.pth
./build/bin/rwkvrt info "$model"
echo
./build/bin/rwkvrt logits --model "$model" --tokens 65,110,100 | head -c 200; echo " ..."
