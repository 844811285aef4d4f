#!/usr/bin/env bash
# Benchmark of `comfyctl batch` (a benchmark, not a test; run it the same way each time).
#
# 1. RunPod: JOBS zero-time jobs (default 1000) against the fake RunPod endpoint
#    (examples/fake_runpod.rs) with -j PARALLEL (default 32): jobs per second, and comfyctl's CPU
#    time (user + sys, from /usr/bin/time) per job. Targets: >= 200 jobs/s, < 2 ms CPU per job.
# 2. ComfyUI: JOBS jobs spread over two fake ComfyUI servers (examples/fake_comfy.rs,
#    --exec-ms 0): jobs per second and CPU per job.
#
# Usage: scripts/bench_batch.sh      (JOBS=200 PARALLEL=16 scripts/bench_batch.sh for a quick run)
# Everything runs on 127.0.0.1; the servers are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-1000}"
PARALLEL="${PARALLEL:-32}"
cargo build --release --quiet --bin comfyctl --example fake_runpod --example fake_comfy
BIN="$PWD/target/release/comfyctl"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

start() { # start NAME CMD... ; sets URL
  "${@:2}" >"$TMP/$1.url" 2>"$TMP/$1.err" &
  PIDS+=($!)
  for _ in $(seq 1 300); do [ -s "$TMP/$1.url" ] && break; sleep 0.05; done
  URL="$(head -n1 "$TMP/$1.url")"
  [ -n "$URL" ] || { echo "$1 did not start" >&2; cat "$TMP/$1.err" >&2; exit 1; }
}

cp workflows/cpu_smoke_webp.json "$TMP/wf.json"
cp workflows/example.png "$TMP/in.png"
python3 - "$TMP" "$JOBS" <<'PY'
import json, sys, os
tmp, n = sys.argv[1], int(sys.argv[2])
with open(os.path.join(tmp, "jobs.jsonl"), "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"j{i:05d}", "workflow": "wf.json", "image": "in.png",
                            "set": {"image_scale_1.width": 64 + i % 512}}) + "\n")
PY

measure() { # measure LABEL ARGS... (runs the batch, prints jobs/s and CPU/job)
  local label=$1; shift
  rm -rf "$TMP/out" "$TMP/jobs.state.jsonl"
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S %M' -o "$TMP/time.txt" "$BIN" batch "$TMP/jobs.jsonl" -o "$TMP/out" -q --json "$@" >"$TMP/out.jsonl"
  t1=$(date +%s%N)
  python3 - "$label" "$TMP" "$JOBS" "$t0" "$t1" <<'PY'
import json, sys
label, tmp, n, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
summary = json.loads(open(f"{tmp}/out.jsonl").read().splitlines()[-1])
user, sys_, rss = open(f"{tmp}/time.txt").read().split()
wall = (t1 - t0) / 1e9
cpu_ms = (float(user) + float(sys_)) * 1000 / n
print(f"{label}: {summary['succeeded']}/{n} ok in {wall:.2f} s = {n / wall:.0f} jobs/s; "
      f"comfyctl CPU {cpu_ms:.2f} ms/job (user {user} s, sys {sys_} s), peak RSS {int(rss) // 1024} MiB")
PY
}

echo "== RunPod: $JOBS zero-time jobs, -j $PARALLEL (targets: >= 200 jobs/s, < 2 ms CPU per job) =="
start runpod target/release/examples/fake_runpod --job-secs 0
measure "runpod" --runpod-url "$URL" -j "$PARALLEL"

echo "== ComfyUI: $JOBS jobs on two fake servers (exec 0 ms, one running + one queued each) =="
start comfy1 target/release/examples/fake_comfy --exec-ms 0 --steps 1
U1=$URL
start comfy2 target/release/examples/fake_comfy --exec-ms 0 --steps 1
U2=$URL
measure "comfyui x2" --url "$U1" --url "$U2"
