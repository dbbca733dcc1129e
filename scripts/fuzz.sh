#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs each for SECONDS
# (default 30) on the seed corpora in tests/fuzz/corpus. New inputs go to build-fuzz/corpus/TARGET
# (the seeds stay untouched); a crash leaves build-fuzz/artifacts/TARGET/crash-* and fails the run.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 600 gguf_file_fuzz
# Each target's last libFuzzer status line (executions, coverage) is printed, and its whole log is
# in build-fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(gguf_file_fuzz llama2c_loader_fuzz bpe_tokenizer_fuzz sentencepiece_tokenizer_fuzz
           chat_template_fuzz generate_request_fuzz)
fi

if [ ! -f build-fuzz/CMakeCache.txt ]; then cmake --preset fuzz >/dev/null; fi
cmake --build build-fuzz --target "${targets[@]}"

failed=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t" build-fuzz/logs
  log="build-fuzz/logs/$t.log"
  # Leaks: the loaders' one-time fixtures live for the process (as in OSS-Fuzz's llama.cpp
  # options); a 2 GB RSS cap and a 25 s per-input timeout make runaway allocations findings.
  if ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
     "build-fuzz/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
       -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t/" \
       "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=1
  fi
  summary=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  echo "$t: $status, ${runs:-?} executions in ${seconds}s; ${summary}"
  if [ "$status" = FAILED ]; then grep -E 'ERROR|SUMMARY|check failed|runtime error' "$log" | head -5; fi
done
exit "$failed"
