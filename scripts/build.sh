#!/usr/bin/env bash
# Configures and builds rwkvrt into ./build (Release, warnings as errors).  Extra arguments go to
# the CMake configure step, e.g. -DRWKVRT_BUILD_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build --preset default "$@" >/dev/null
cmake --build build -j"$jobs"
