#!/usr/bin/env bash
# The one command a session lent a GPU runs (../shared/GPU.md): it BUILDS NOTHING. From the bundle
# scripts/gpu-bundle.sh made (bin/, lib/, tools/bench/ beside this scripts/ folder), or from a
# repo whose build-cuda/ holds the binaries, it runs
#   1. the carried gpu tests (bin/*_test), each under its own timeout;
#   2. torch_reference.py: PyTorch SDPA full prefill (prefill, prefill_model) at 8K and 32K;
#   3. kvserve-gpu-bench --kv-policy full,snapkv,fastkv at 8K and 32K on synthetic:llama-3.1-8b,
#      compared with step 2's SDPA TTFT and the FLOP model (issue 12, P1);
#   4. issue 13's decode checks: kvserve-gpu-bench --decode-policy (tokens/s of full, fastkv,
#      quest, freekv, fastkv_freekv and freekv's oracle at 32K, P2 and P3's step) and
#      kvserve-tiered-kernel-bench (the recall kernel's GB/s, P3);
#   5. opt-in (KVSERVE_GPU_CHECK_PARTS=decode_eager, for a rerun: the default parts spend the
#      minutes): step 4's decode bench for full and freekv with --cuda-graphs false, what CUDA
#      graphs change beside step 4's lines (JSON field cuda_graphs; the report's
#      cuda_graphs gives tokens/s with graphs over without, per policy and batch);
# every part under a hard `timeout`, within KVSERVE_GPU_CHECK_BUDGET_S (470 s: under 8 minutes)
# in all, and writes RESULTS_DIR/gpu-check.json (test counts, every bench line, the verdicts; see
# tools/bench/gpu_check_report.py) and RESULTS_DIR/gpu-check-logs.tar.gz (every log and XML).
# Two files, so RESULTS_DIR can be the device machine's $OUT.
#
# Usage: scripts/gpu-check.sh RESULTS_DIR
# Exit status 0 when every part ran to its end and every test passed; the verdicts are data.
# KVSERVE_GPU_CHECK_PARTS picks parts for a rerun (default tests,torch_reference,policy_prefill,
# decode; policy_prefill without torch_reference has no SDPA ratios).
# Overrides (the check's own test uses them): KVSERVE_GPU_BENCH (the bench binary),
# KVSERVE_GPU_TESTS (test binaries, space-separated), KVSERVE_TORCH_REFERENCE (the script),
# PYTHON, and the part budgets below.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 RESULTS_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
mkdir -p "$1"
results=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# Seconds: the whole check, then each part's cap (a part also stops at the whole check's end,
# less the room the report needs).
budget=${KVSERVE_GPU_CHECK_BUDGET_S:-470}
tests_s=${KVSERVE_GPU_CHECK_TESTS_S:-140}   # all gpu tests together
test_s=${KVSERVE_GPU_CHECK_TEST_S:-120}     # any one test binary
torch_s=${KVSERVE_GPU_CHECK_TORCH_S:-100}
policy_s=${KVSERVE_GPU_CHECK_POLICY_S:-130}
decode_s=${KVSERVE_GPU_CHECK_DECODE_S:-90}  # issue 13's share: policy_decode, then tiered_kernels
kernels_s=${KVSERVE_GPU_CHECK_KERNELS_S:-25}  # of which the tiered kernels
decode_batches=${KVSERVE_GPU_CHECK_DECODE_BATCHES:-1,4}
report_room_s=10
lengths=${KVSERVE_GPU_CHECK_LENGTHS:-8192,32768}
parts=",${KVSERVE_GPU_CHECK_PARTS:-tests,torch_reference,policy_prefill,decode},"
wanted() { [[ $parts == *",$1,"* ]]; }
# torch loads its own CUDA and system libraries: not the bundle's lib/ (Debian's builds).
torch_ld_path=${LD_LIBRARY_PATH:-}
model=${KVSERVE_GPU_CHECK_MODEL:-synthetic:llama-3.1-8b}

# Where the binaries are: a bundle's bin/, else the repo's build-cuda/.
if [ -d "$root/bin" ]; then
  bench=${KVSERVE_GPU_BENCH:-$root/bin/kvserve-gpu-bench}
  default_tests=$(ls "$root"/bin/*_test 2>/dev/null | tr '\n' ' ')
  export LD_LIBRARY_PATH="$root/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if [ -d "$root/models" ]; then
    export KVSERVE_SMOLLM2_GGUF="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  fi
else
  bench=${KVSERVE_GPU_BENCH:-$root/build-cuda/bin/kvserve-gpu-bench}
  default_tests=""
  for src in "$root"/tests/gpu/*_test.cc; do
    t="$root/build-cuda/tests/$(basename "$src" .cc)"
    if [ -x "$t" ]; then default_tests+="$t "; fi
  done
fi
gpu_tests=${KVSERVE_GPU_TESTS:-$default_tests}
torch_reference=${KVSERVE_TORCH_REFERENCE:-$root/tools/bench/torch_reference.py}
python=${PYTHON:-python3}

remaining() { echo $((budget - report_room_s - ($(date +%s) - start))); }

# run_part NAME CAP_S STDOUT_FILE CMD...: runs CMD under `timeout` (the cap, or what is left of
# the budget if less; skipped under 2 s), stdout to STDOUT_FILE, stderr to NAME.log, and appends
# {part, rc, wall_s, timeout_s, timed_out, skipped, output} to parts.jsonl for the report.
run_part() {
  local name=$1 cap=$2 stdout=$3
  shift 3
  local left t0 rc timed_out=false skipped=false limit
  left=$(remaining)
  limit=$((cap < left ? cap : left))
  t0=$(date +%s%N)
  if [ "$limit" -lt 2 ]; then
    rc=-1
    skipped=true
    echo "$name: skipped, ${left}s of the budget left" >"$work/$name.log"
  else
    timeout -k 5 "$limit" "$@" >"$stdout" 2>"$work/$name.log"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then timed_out=true; fi
  fi
  local ms wall
  ms=$((($(date +%s%N) - t0) / 1000000))
  wall=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  printf '{"part":"%s","rc":%d,"wall_s":%s,"timeout_s":%d,"timed_out":%s,"skipped":%s,"output":"%s"}\n' \
    "$name" "$rc" "$wall" "$limit" "$timed_out" "$skipped" "$(basename "$stdout")" \
    >>"$work/parts.jsonl"
  echo "== $name: rc $rc, ${wall}s (limit ${limit}s)$([ $timed_out = true ] && echo ', TIMED OUT')"
  return $rc
}

status=0
: >"$work/parts.jsonl"
timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv,noheader >"$work/nvidia-smi.txt" 2>/dev/null || rm -f "$work/nvidia-smi.txt"

# 1. The carried gpu tests, one binary at a time, within tests_s together.
mkdir -p "$work/tests"
tests_start=$(date +%s)
wanted tests || gpu_tests=""
for t in $gpu_tests; do
  name=$(basename "$t")
  left=$((tests_s - ($(date +%s) - tests_start)))
  cap=$((test_s < left ? test_s : left))
  run_part "test.$name" "$cap" "$work/tests/$name.log" \
    "$t" --gtest_output="xml:$work/tests/$name.xml" || status=1
done

# 2. PyTorch SDPA full prefill at the policy lengths (before kvserve: it reads these lines).
if wanted torch_reference; then
  run_part torch_reference "$torch_s" "$work/torch-reference.jsonl" \
    env PYTHONUNBUFFERED=1 LD_LIBRARY_PATH="$torch_ld_path" "$python" "$torch_reference" \
    --model "$model" --benches prefill,prefill_model --prefill-lengths "$lengths" --repeats 3 ||
    status=1
fi

# 3. kvserve's TTFT per policy beside SDPA and the FLOP model (tsp_rate 0.2, TSP layer
#    n_layers / 2 - 1: the options' defaults).
if wanted policy_prefill; then
  run_part policy_prefill "$policy_s" "$work/kvserve-gpu-bench.jsonl" \
    "$bench" --model "$model" --benches policy_prefill --kv-policy full,snapkv,fastkv \
    --policy-lengths "$lengths" --policy-repeats 3 --kv-tsp-rate 0.2 \
    --sdpa-reference "$work/torch-reference.jsonl" --sdpa-bench prefill || status=1
fi

# 4. ---- Issue 13's decode checks (P2, P3), within decode_s: ---------------------------------
#    Each part's stdout lines land in gpu-check.json under bench.<part>; their verdicts come from
#    tools/bench/gpu_check_report.py's decode_verdicts().
run_decode_checks() {
  local rc=0
  # Decode tokens/s per policy at 32K (6 policies x the batches' prefills: the minutes allow
  # batch 4 at most, not the largest batch that fits), freekv against its oracle.
  run_part policy_decode $((decode_s - kernels_s)) "$work/kvserve-gpu-bench-decode.jsonl" \
    "$bench" --model "$model" --benches policy_decode \
    --decode-policy full,fastkv,quest,freekv,freekv_oracle,fastkv_freekv \
    --decode-context 32768 --decode-batches "$decode_batches" --decode-new-tokens 32 || rc=1
  # The FreeKV/Quest kernels alone: recall GB/s (P3), sparse against dense decode attention.
  local tiered=${KVSERVE_TIERED_KERNEL_BENCH:-$(dirname "$bench")/kvserve-tiered-kernel-bench}
  if [ ! -x "$tiered" ]; then
    echo "== tiered_kernels: skipped ($tiered not built)"
    return $rc
  fi
  run_part tiered_kernels "$kernels_s" "$work/kvserve-tiered-kernel-bench.jsonl" \
    "$tiered" --context 32768 --batches 1,8,32 --repeats 10 || rc=1
  return $rc
}
if wanted decode; then run_decode_checks || status=1; fi
if wanted decode_eager; then
  run_part decode_eager "$decode_s" "$work/kvserve-gpu-bench-decode-eager.jsonl" \
    "$bench" --model "$model" --benches policy_decode --cuda-graphs false \
    --decode-policy full,freekv --decode-context 32768 --decode-batches "$decode_batches" \
    --decode-new-tokens 32 || status=1
fi
# ---- end of issue 13's section --------------------------------------------------------------

"$python" "$root/tools/bench/gpu_check_report.py" "$work" "$results/gpu-check.json" \
  --wall-s $(($(date +%s) - start)) --budget-s "$budget" || status=1
tar -czf "$results/gpu-check-logs.tar.gz" -C "$work" . || status=1
echo "gpu-check: $results/gpu-check.json ($(($(date +%s) - start)) s)"
exit $status
