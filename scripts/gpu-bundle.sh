#!/usr/bin/env bash
# Builds the CUDA targets for Hopper on a development machine (no GPU needed) and packs what the
# GPU machine needs to run the gpu tests and benchmarks there: the binaries, the shared libraries
# they load that the GPU machine lacks (ldd tells; the driver and CUDA's own libraries stay out),
# the test model when asked for, and the runners. Usage: scripts/gpu-bundle.sh [OUT_DIR]
# (default: gpu-bundle/). On the GPU machine: OUT_DIR/scripts/gpu-check.sh RESULTS_DIR (the issues'
# checks in under 8 minutes, one JSON file), or OUT_DIR/run-gpu.sh [--bench] [RESULTS_DIR].
# The device machine's carry is 64 MiB with the repo, so the model (~98 MB) stays out unless
# KVSERVE_BUNDLE_MODEL=1 (the SmolLM2 tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-bundle}

cmake --preset cuda >/dev/null
mapfile -t gpu_tests < <(find tests/gpu -name '*_test.cc' -printf '%f\n' | sed 's/\.cc$//' | sort)
targets=("${gpu_tests[@]}")
tools=(kvserve-gpu-bench kvserve-cli kvserve-engine-bench kvserve-tiered-kernel-bench)
for t in "${tools[@]}"; do
  if cmake --build build-cuda --target help | grep -q "^$t:"; then targets+=("$t"); fi
done
cmake --build build-cuda --parallel "$(nproc)" --target "${targets[@]}"

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/models" "$out/scripts" "$out/tools/bench"
for t in "${gpu_tests[@]}"; do cp "build-cuda/tests/$t" "$out/bin/"; done
for t in "${tools[@]}"; do
  if [ -x "build-cuda/bin/$t" ]; then cp "build-cuda/bin/$t" "$out/bin/"; fi
done
# The benchmark runner finds bin/ and lib/ beside its own folder.
cp scripts/gpu-bench.sh scripts/gpu-check.sh "$out/scripts/"
cp tools/bench/torch_reference.py tools/bench/gpu_bench_summary.py tools/bench/gpu_check_report.py \
  "$out/tools/bench/"

# Libraries from the system (Debian 12) the binaries load, except what the GPU machine has
# (../shared/GPU.md): the C and C++ runtimes (newer there), the CUDA driver and libraries,
# OpenBLAS and protobuf 3.21 (libprotobuf.so.32). That keeps the bundle within a device carry.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl|librt|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnvidia|libopenblas|libgfortran|libquadmath|libprotobuf\.so\.32)'
for bin in "$out"/bin/*; do
  ldd "$bin" | awk '/=> \//{print $1, $3}' | while read -r name path; do
    if ! [[ $name =~ $skip ]]; then cp -nL "$path" "$out/lib/"; fi
  done
done

# The SmolLM2 tests want the model (~98 MB): only with KVSERVE_BUNDLE_MODEL=1 (too big to carry).
if [ "${KVSERVE_BUNDLE_MODEL:-0}" = 1 ] && model=$(scripts/fetch-model.sh 2>/dev/null); then
  cp "$model" "$out/models/"
fi

cat >"$out/run-gpu.sh" <<'RUN'
#!/usr/bin/env bash
# Runs every gpu test (JUnit XML and logs into RESULTS_DIR); with --bench also the GPU benchmark
# and its PyTorch reference (scripts/gpu-bench.sh) into RESULTS_DIR/bench.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=0
if [ "${1:-}" = --bench ]; then bench=1; shift; fi
results=${1:-$here/results}
mkdir -p "$results"
export LD_LIBRARY_PATH="$here/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KVSERVE_SMOLLM2_GGUF="$here/models/SmolLM2-135M-Instruct.Q4_1.gguf"
status=0
for t in "$here"/bin/*_test; do
  name=$(basename "$t")
  "$t" --gtest_output="xml:$results/$name.xml" >"$results/$name.log" 2>&1 || status=1
  tail -n 3 "$results/$name.log"
done
if [ $bench = 1 ]; then "$here/scripts/gpu-bench.sh" "$results/bench" || status=1; fi
exit $status
RUN
chmod +x "$out/run-gpu.sh"
du -sh "$out"
size_mib=$(($(du -sk --exclude=models "$out" | cut -f1) / 1024))
if [ "$size_mib" -gt 58 ]; then
  echo "gpu-bundle.sh: warning: $size_mib MiB without the model; the device carry (64 MiB with" \
    "the repo) may refuse it" >&2
fi
