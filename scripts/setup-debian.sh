#!/usr/bin/env bash
# Installs everything rwkvrt needs to build and test on Debian 12, from Debian's own packages.
# Idempotent: packages already installed are left alone.  Runs apt through sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libdnnl-dev          # oneDNN: the CPU backend's matmul
  ocl-icd-opencl-dev   # oneDNN's CMake package config requires OpenCL (only recommended by apt)
  libfmt-dev nlohmann-json3-dev libcli11-dev zlib1g-dev
  libgtest-dev         # GoogleTest
  python3              # CLI and binding tests
  python3-pip python3-setuptools python3-wheel python3-venv  # installing the Python binding (tested)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # rwkvrtd
  python3-grpcio python3-protobuf  # the daemon's Python client sample and tests
  openssl              # the daemon's TLS test makes a self-signed certificate
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

apt=(apt-get)
if [ "$(id -u)" -ne 0 ]; then apt=(sudo apt-get); fi
export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${missing[*]}" >&2
if ! "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
  "${apt[@]}" update -q >/dev/null
  "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
