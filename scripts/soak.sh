#!/usr/bin/env bash
# Bounded soak: one kvserve on 127.0.0.1 (stories260K, small KV pools so pages cycle) under
# scripts/soak_driver.py's load for MINUTES: every KV policy, text/id/chat prompts, client
# cancels, deadlines, Aborts, refused and malformed requests. Fails if resident memory keeps
# growing after warm-up, if KV pages are left in use when the load stops, if the server answers
# something unexpected or dies.
#   scripts/soak.sh MINUTES [OUT_DIR]      (default OUT_DIR: build/soak)
# Writes OUT_DIR/rss.csv (elapsed_s, rss_kib, requests, device_pages, host_pages every 10 s),
# OUT_DIR/result.json and OUT_DIR/kvserve.log. Run it with `nice` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:?usage: scripts/soak.sh MINUTES [OUT_DIR]}"
out="${2:-build/soak}"
mkdir -p "$out"
python=/usr/bin/python3  # Debian's, with python3-grpcio (scripts/setup.sh)

if [ ! -x build/bin/kvserve ]; then cmake --preset cpu >/dev/null && cmake --build build --target kvserve; fi
model=tests/data/stories260K
build/bin/kvserve --model "$model/stories260K.bin" --tokenizer "$model/tok512.bin" \
  --host 127.0.0.1 --port 0 --metrics-port 0 --threads 1 --max-running 8 \
  --kv-cache-memory 8MiB --kv-host-memory 32MiB --page-size 16 --drain-timeout 5 \
  >"$out/kvserve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*gRPC listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/kvserve.log" | head -1)
  if [ -n "$port" ] && grep -q "SERVING" "$out/kvserve.log"; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "soak: kvserve exited"; cat "$out/kvserve.log"; exit 1; fi
  sleep 0.1
done
[ -n "$port" ] || { echo "soak: kvserve did not start"; exit 1; }
echo "soak: kvserve pid $server on 127.0.0.1:$port for $minutes min; curve in $out/rss.csv"

status=0
"$python" scripts/soak_driver.py --server "127.0.0.1:$port" --pid "$server" \
  --minutes "$minutes" --csv "$out/rss.csv" >"$out/result.json" || status=$?
cat "$out/result.json"
if ! kill -0 "$server" 2>/dev/null; then echo "soak: kvserve died"; status=1; fi
exit "$status"
