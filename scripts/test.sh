#!/usr/bin/env bash
# The README's test command (and CI's): installs dependencies, builds, runs the whole default test
# suite.  Slow suites (fuzzing, benchmarks, GPU) carry CTest labels and are left out here; run them
# with `ctest --test-dir build -L fuzz` (or bench, gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
./scripts/build.sh
jobs=$(nproc 2>/dev/null || echo 2)
ctest --test-dir build --output-on-failure -j"$jobs" -LE 'fuzz|bench|gpu'
