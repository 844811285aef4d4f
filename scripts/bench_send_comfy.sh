#!/usr/bin/env bash
# Benchmark: comfyctl's own overhead per `send` to a ComfyUI server, and its peak memory.
#
# Runs the release binary RUNS times against the fake ComfyUI (examples/fake_comfy.rs, the same
# fake the tests use) on 127.0.0.1, with a 1 MB input image and a 20 MB output file. The fake
# "executes" each prompt for EXEC_MS; overhead = wall time of the whole `comfyctl send` minus
# EXEC_MS (it includes process start, reading and checking the workflow and image, the upload,
# the websocket, queueing, fetching /history and streaming the 20 MB output to disk).
# Peak RSS comes from /usr/bin/time -v. Targets: overhead < 30 ms, peak RSS < 2x the output.
#
#   scripts/bench_send_comfy.sh            # RUNS=10 EXEC_MS=500 OUT_MB=20
#   RUNS=20 EXEC_MS=1000 scripts/bench_send_comfy.sh
#   BIN=/path/to/other/comfyctl scripts/bench_send_comfy.sh   # the same run with another build
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
EXEC_MS=${EXEC_MS:-500}
OUT_MB=${OUT_MB:-20}

cargo build --release --quiet --bin comfyctl --example fake_comfy
bin=${BIN:-target/release/comfyctl}
work=$(mktemp -d)
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A 1 MB input "PNG" (PNG signature + random bytes; the fake does not decode it).
printf '\x89PNG\r\n\x1a\n' >"$work/input.png"
head -c $((1024 * 1024 - 8)) /dev/urandom >>"$work/input.png"

target/release/examples/fake_comfy --exec-ms "$EXEC_MS" --output-mb "$OUT_MB" >"$work/url" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "fake server did not start" >&2; exit 1; }

echo "comfyctl send: $RUNS runs, input 1 MB, output $OUT_MB MB, server execution ${EXEC_MS} ms, $url"
overheads=()
max_rss_kb=0
for i in $(seq "$RUNS"); do
  # A fresh output directory (replacing the last run's 20 MB file would time the file system's
  # delete), and a different width each run so the fake's cache does not skip the execution.
  rm -rf "$work/out"
  start=$(date +%s%N)
  /usr/bin/time -v -o "$work/time.txt" "$bin" send workflows/cpu_smoke_webp.json \
    --image "$work/input.png" --url "$url" -o "$work/out" --no-preflight -q --json ${EXTRA:-} \
    --set "2.width=$((128 + i))" >"$work/result.json"
  end=$(date +%s%N)
  wall_ms=$(( (end - start) / 1000000 ))
  overhead=$(( wall_ms - EXEC_MS ))
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  [ "$rss_kb" -gt "$max_rss_kb" ] && max_rss_kb=$rss_kb
  overheads+=("$overhead")
  phases=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["timings"]; print("upload %.0f  run %.0f  download %.0f ms" % (t["upload_s"]*1e3, t["run_s"]*1e3, t["download_s"]*1e3))' "$work/result.json" 2>/dev/null || true)
  printf '  run %2d: wall %5d ms  overhead %4d ms  peak RSS %6d kB  (%s)\n' "$i" "$wall_ms" "$overhead" "$rss_kb" "$phases"
done

# The floor for moving the output: the same /view download with curl, to disk, RUNS times.
floors=()
for i in $(seq "$RUNS"); do
  rm -f "$work/curl.out"
  t=$(curl -s -o "$work/curl.out" -w '%{time_total}' "$url/view?filename=bench_00001_.webp&subfolder=&type=output")
  floors+=("$(awk -v t="$t" 'BEGIN {printf "%d", t * 1000}')")
done
floor=$(printf '%s\n' "${floors[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

sorted=$(printf '%s\n' "${overheads[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
worst=$(echo "$sorted" | tail -n1)
out_kb=$((OUT_MB * 1024))
echo "overhead: median ${median} ms, worst ${worst} ms (target < 30 ms)"
echo "  of which moving the ${OUT_MB} MB output costs at least ${floor} ms (median of curl fetching the same /view to disk);"
echo "  overhead above that floor: $((median - floor)) ms"
echo "peak RSS: ${max_rss_kb} kB = $(awk -v r="$max_rss_kb" -v o="$out_kb" 'BEGIN {printf "%.2f", r / o}')x the ${OUT_MB} MB output (target < 2x)"
