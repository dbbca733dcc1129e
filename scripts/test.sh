#!/usr/bin/env bash
# The test command: installs dependencies, fetches the default model, builds, runs every CPU test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-model.sh >/dev/null
scripts/build.sh cpu
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
