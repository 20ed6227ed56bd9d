#!/usr/bin/env bash
# The README's demo: installs dependencies, builds, and runs rwkvrt on a model it provides.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-debian.sh
./scripts/build.sh
exec ./scripts/run-demo.sh
