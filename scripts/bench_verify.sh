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
mkdir -p "$CACHE/www"
cp "$OI" "$CACHE/www/object_info"
# Pull through a throwaway local HTTP server, exactly as a user would from their ComfyUI.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$CACHE/www" >/dev/null 2>&1 &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null; rm -rf "$CACHE"' EXIT
export COMFYCTL_CACHE_DIR=$CACHE
URL=http://127.0.0.1:$PORT
for _ in $(seq 50); do "$BIN" schema pull --url "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
ls -l "$CACHE/schemas/"
kill $HTTP_PID
CMD="$BIN verify --offline --server $URL workflows/wan_i2v.json"
$CMD >/dev/null || true   # errors expected: the capture server has no models
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs 100 -i "$CMD"
else
  start=$(date +%s%N)
  for _ in $(seq 50); do $CMD >/dev/null 2>&1 || true; done
  end=$(date +%s%N)
  echo "mean: $(( (end - start) / 50 / 1000 )) µs per run (50 runs)"
fi
