#!/usr/bin/env bash
# The test command: installs dependencies, fetches the default model, builds, runs every CPU test;
# with KVSERVE_SANITIZERS=1, then the sanitizer step: the unit and integration tests under ASan +
# UBSan (preset asan, built optimized), the engine's threaded tests (scheduler, worker pool, tiered
# recall) under TSan (preset tsan) and a short run of every fuzz target. The step stays opt-in:
# measured on the shared 2-core CI machine (load 13-17), a fresh clone's .ci/run without it took
# 69 min (README § Security), over the 30-minute budget already. Each phase prints its duration.
# Arguments go to the first ctest only.
set -euo pipefail
cd "$(dirname "$0")/.."
phase_start=$(date +%s)
phase() {  # "test: PHASE took Ns (load ...)" for the phase just ended
  local now
  now=$(date +%s)
  echo "test: $1 took $((now - phase_start))s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  phase_start=$now
}
scripts/setup.sh
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh  # the sanitizer and fuzz builds below share the compiler cache too
scripts/fetch-model.sh >/dev/null
phase "setup and model"
scripts/build.sh cpu
phase "build"
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
phase "tests"

if [ "${KVSERVE_SANITIZERS:-0}" = 0 ]; then exit 0; fi
echo "test: sanitizer step (ASan + UBSan: unit and integration; TSan: scheduler, pool, recall)"
# -O2 -g rather than the preset's Debug: the CPU backend at -O0 under ASan is too slow for CI.
cmake --preset asan -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-asan --parallel "$(nproc)"
phase "asan build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan -L 'unit|integration' --output-on-failure --parallel "$(nproc)" \
        --timeout 900
phase "asan tests"

tsan_targets=(scheduler_test thread_pool_test tiered_decode_test tiered_kv_policy_test)
cmake --preset tsan >/dev/null
cmake --build build-tsan --parallel "$(nproc)" --target "${tsan_targets[@]}"
# OpenBLAS's own threads are not instrumented: BLAS runs on the calling thread here.
OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan -R '^(SchedulerTest|ThreadPoolTest|TieredDecodeTest|TieredKvPolicyTest)\.' \
        --output-on-failure --parallel "$(nproc)" --timeout 900
phase "tsan build and tests"

# A short libFuzzer run of every target (KVSERVE_FUZZ_SECONDS each, 0 skips); long runs: fuzz.sh.
fuzz_seconds="${KVSERVE_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then scripts/fuzz.sh "$fuzz_seconds"; fi
phase "fuzz"
