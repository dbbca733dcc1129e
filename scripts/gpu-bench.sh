#!/usr/bin/env bash
# Issue 6's GPU benchmark in one go: kvserve-gpu-bench (with --gemm-check) and then the PyTorch
# reference on the same GPU, one after the other so neither shares the device with the other.
# Their JSON lines go to RESULTS_DIR/kvserve-gpu-bench.jsonl and RESULTS_DIR/torch-reference.jsonl
# (stderr beside them as .log), and the ratios the issue sets targets for are printed and saved in
# RESULTS_DIR/summary.txt.
#
# Usage: scripts/gpu-bench.sh [RESULTS_DIR] [FLAG...]   (default RESULTS_DIR: results/)
# FLAGs go to both tools: --model, --prefill-lengths, --decode-batches, --decode-contexts,
# --decode-steps, --repeats, --hbm-gbps. The binary is $KVSERVE_GPU_BENCH, else
# build-cuda/bin/kvserve-gpu-bench, else bin/kvserve-gpu-bench beside this folder (a bundle, whose
# lib/ then joins LD_LIBRARY_PATH). Python: $PYTHON, else python3, with torch.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
results=${1:-results}
if [ $# -gt 0 ]; then shift; fi
mkdir -p "$results"

bench=${KVSERVE_GPU_BENCH:-}
for candidate in "$root/build-cuda/bin/kvserve-gpu-bench" "$root/bin/kvserve-gpu-bench"; do
  if [ -z "$bench" ] && [ -x "$candidate" ]; then bench=$candidate; fi
done
if [ -z "$bench" ]; then
  echo "gpu-bench.sh: no kvserve-gpu-bench: build it (cmake --preset cuda; cmake --build" \
    "build-cuda --target kvserve-gpu-bench) or set KVSERVE_GPU_BENCH" >&2
  exit 1
fi
if [ -d "$root/lib" ]; then
  export LD_LIBRARY_PATH="$root/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
python=${PYTHON:-python3}
tools="$root/tools/bench"

status=0
echo "== kvserve-gpu-bench ($bench)"
"$bench" --gemm-check "$@" >"$results/kvserve-gpu-bench.jsonl" 2>"$results/kvserve-gpu-bench.log" ||
  { status=1; tail -n 5 "$results/kvserve-gpu-bench.log" >&2; }
echo "== torch_reference.py"
"$python" "$tools/torch_reference.py" "$@" >"$results/torch-reference.jsonl" \
  2>"$results/torch-reference.log" || { status=1; tail -n 5 "$results/torch-reference.log" >&2; }

"$python" "$tools/gpu_bench_summary.py" "$results/kvserve-gpu-bench.jsonl" \
  "$results/torch-reference.jsonl" | tee "$results/summary.txt"
exit $status
