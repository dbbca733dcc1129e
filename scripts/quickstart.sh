#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and starts the gRPC server on the default model
# (gRPC on :50051, Prometheus metrics on :9090/metrics). Extra arguments go to kvserve.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=$(scripts/fetch-model.sh)
scripts/build.sh cpu
exec build/bin/kvserve --model "$model" --port 50051 --metrics-port 9090 "$@"
