#!/usr/bin/env bash
# Installs every Debian package kvserve needs to build and test (idempotent, non-interactive).
# Usage: scripts/setup.sh            (needs root or sudo)
set -euo pipefail

# python3-grpcio runs tools/kvserve_client.py, whose stubs come from protoc + grpc_python_plugin
# (python3-grpc-tools is not used: its bundled protoc predates proto3 `optional`).
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates clang-format
  python3 python3-pip python3-venv python3-grpcio
  libabsl-dev libspdlog-dev libfmt-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost-context-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # Hardening: OpenSSL (API-key hashes, request ids; openssl makes the TLS tests' certificates),
  # clang + libFuzzer/sanitizer runtimes for the `fuzz` preset and scripts/fuzz.sh.
  libssl-dev openssl clang libclang-rt-14-dev
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
