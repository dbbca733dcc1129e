#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine and runs the default model.
# (Until the gRPC server lands, this runs one chat completion through kvserve-cli.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=$(scripts/fetch-model.sh)
scripts/build.sh cpu
build/bin/kvserve-cli generate --model "$model" --chat --prompt "${1:-What is the capital of France?}" \
  --max-tokens 64
