#!/usr/bin/env bash
# Benchmark of `comfyctl send --runpod-url` against the fake RunPod endpoint (examples/fake_runpod.rs).
#
# 1. Latency: RUNS jobs (default 10) that each take 3 s plus a random 0-1 s (so the poll clock and
#    the job clock meet at a random phase, as in real life); for every job, the time from the moment the
#    fake marks it COMPLETED to the moment the output file was last written (its mtime). Target:
#    <= 300 ms on average (the old Python client polled every 10 s: ~5 s on average).
# 2. Memory: one job whose output is a 100 MB file sent as ~133 MB of base64 in the /status body;
#    peak RSS of comfyctl from /usr/bin/time -v. Target: < 2.5x the decoded size (250 MB).
#
# Usage: scripts/bench_runpod.sh            (RUNS=20 scripts/bench_runpod.sh for more samples)
# Needs: cargo, python3, /usr/bin/time. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-10}"
OUTPUT_MB="${OUTPUT_MB:-100}"

cargo build --release --quiet --bin comfyctl --example fake_runpod
BIN="${BIN:-$PWD/target/release/comfyctl}"
FAKE="$PWD/target/release/examples/fake_runpod"
TMP="$(mktemp -d)"
FAKE_PID=""
cleanup() {
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

start_fake() {
  rm -f "$TMP/fake.out"
  "$FAKE" "$@" >"$TMP/fake.out" 2>"$TMP/fake.err" &
  FAKE_PID=$!
  for _ in $(seq 1 600); do
    if [ -s "$TMP/fake.out" ]; then break; fi
    sleep 0.1
  done
  URL="$(head -n1 "$TMP/fake.out")"
  [ -n "$URL" ] || { echo "fake server did not start" >&2; cat "$TMP/fake.err" >&2; exit 1; }
}

stop_fake() {
  kill "$FAKE_PID" 2>/dev/null || true
  wait "$FAKE_PID" 2>/dev/null || true
  FAKE_PID=""
}

echo "== latency: $RUNS jobs of 3-4 s (adaptive polling) =="
start_fake --job-secs 3 --jitter-secs 1
for i in $(seq 1 "$RUNS"); do
  "$BIN" send workflows/cpu_smoke_webp.json --image workflows/example.png \
    --runpod-url "$URL" -o "$TMP/out$i" -q --json >"$TMP/run$i.json"
done
python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('$URL/_fake/final_times').read().decode())" >"$TMP/final.json"
stop_fake
python3 - "$TMP" "$RUNS" <<'PY'
import json, os, sys
tmp, runs = sys.argv[1], int(sys.argv[2])
final = json.load(open(os.path.join(tmp, "final.json")))
lat = []
for i in range(1, runs + 1):
    r = json.load(open(os.path.join(tmp, f"run{i}.json")))
    path = r["outputs"][0]["path"]
    done_ms = os.stat(path).st_mtime_ns / 1e6
    lat.append(done_ms - final[r["job_id"]])
lat.sort()
avg = sum(lat) / len(lat)
print(f"added latency (COMPLETED -> file on disk), ms: avg {avg:.0f}, min {lat[0]:.0f}, "
      f"median {lat[len(lat)//2]:.0f}, max {lat[-1]:.0f}  (target avg <= 300)")
print("PASS" if avg <= 300 else "FAIL", "latency")
PY

echo "== memory: one ${OUTPUT_MB} MB output as base64 =="
start_fake --job-secs 0.2 --output-mb "$OUTPUT_MB"
/usr/bin/time -v "$BIN" send workflows/cpu_smoke_webp.json --image workflows/example.png \
  --runpod-url "$URL" -o "$TMP/big" -q --poll-interval 100ms 2>"$TMP/time.txt" || { cat "$TMP/time.txt" >&2; exit 1; }
stop_fake
python3 - "$TMP" "$OUTPUT_MB" <<'PY'
import os, re, sys
tmp, mb = sys.argv[1], float(sys.argv[2])
t = open(os.path.join(tmp, "time.txt")).read()
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1)
files = os.listdir(os.path.join(tmp, "big"))
size = sum(os.path.getsize(os.path.join(tmp, "big", f)) for f in files)
ratio = rss_kb * 1024 / size
print(f"output {size/1e6:.1f} MB ({', '.join(files)}), peak RSS {rss_kb/1024:.1f} MiB = {ratio:.2f}x the decoded size, wall {wall}  (target < 2.5x)")
print("PASS" if ratio < 2.5 else "FAIL", "memory")
PY
