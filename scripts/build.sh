#!/usr/bin/env bash
# Configures and builds a preset (default: cpu). Binaries land in build/bin/ (cpu preset).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-cpu}
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" --parallel "$(nproc)"
