#!/usr/bin/env bash
# Whole-process time of `comfyctl verify` on the 13-node workflows/wan_i2v.json with a cached
# schema (the real 687 kB /object_info capture, placed in a temporary cache as if by
# `comfyctl schema pull`). Release build; hyperfine when installed, else a 50-run loop.
#
#   scripts/bench_verify.sh [OBJECT_INFO]
set -euo pipefail
cd "$(dirname "$0")/.."
OI=${1:-../shared/fixtures/captures/object_info.json}
[ -f "$OI" ] || OI=/work/shared/fixtures/captures/object_info.json
cargo build --release -q
BIN=$PWD/target/release/comfyctl
CACHE=$(mktemp -d)
trap 'rm -rf "$CACHE"' EXIT
mkdir -p "$CACHE/schemas"
cp "$OI" "$CACHE/schemas/127.0.0.1_8188.json"
export COMFYCTL_CACHE_DIR=$CACHE
CMD="$BIN verify --offline --server http://127.0.0.1:8188 workflows/wan_i2v.json"
$CMD >/dev/null || true   # errors expected: the capture server has no models
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs 100 -i "$CMD"
else
  start=$(date +%s%N)
  for _ in $(seq 50); do $CMD >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  echo "mean: $(( (end - start) / 50 / 1000 )) µs per run (50 runs)"
fi
