#!/usr/bin/env bash
# Whole-process benchmark of `comfyctl normalize` against the old Python normalizer
# (scripts/old_normalizer.py), on the same generated workflows, in one run.
#
#   scripts/bench_normalize.sh            # 1k, 10k, 100k nodes + the 13-node Wan workflow
#   SIZES="1000 10000" scripts/bench_normalize.sh
#
# It builds comfyctl with --release, generates the workflows once into target/bench-normalize/
# (scripts/gen_workflow.py, fixed seed, so every run times the same files), then for each size
# times both programs as whole processes with hyperfine (median of RUNS runs after a warm-up;
# without hyperfine, a loop of RUNS runs and its median) and measures each one's peak RSS with
# /usr/bin/time -v. Targets (issue 2): at 100k nodes comfyctl >= 15x faster than Python and
# < half its peak RSS; 10x the nodes -> <= 12x the time; the Wan workflow < 5 ms.
#
# Needs: cargo, python3; hyperfine and GNU time (/usr/bin/time) are used when present
# (Debian/Ubuntu: apt-get install -y hyperfine time).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000 10000 100000"}
SEED=${SEED:-1}
DIR=target/bench-normalize
mkdir -p "$DIR"

cargo build --release --quiet
BIN=target/release/comfyctl
PY=${PYTHON:-python3}
WAN=workflows/wan_i2v.json

# The generator's own hash is in the file names, so a changed generator means new files.
GEN=$(sha1sum scripts/gen_workflow.py | cut -c1-8)
for n in $SIZES; do
  f="$DIR/w$n-$SEED-$GEN.json"
  [ -s "$f" ] || "$PY" scripts/gen_workflow.py "$n" "$f" --seed "$SEED"
done

have_hyperfine=0
command -v hyperfine >/dev/null 2>&1 && have_hyperfine=1
have_time=0
[ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1 && have_time=1

runs_for() { # fewer runs for the slow sizes
  if [ -n "${RUNS:-}" ]; then echo "$RUNS"; elif [ "$1" -ge 100000 ]; then echo 15; elif [ "$1" -ge 10000 ]; then echo 10; else echo 20; fi
}

# median wall time in seconds of a command line, run $1 times
median_time() {
  local runs=$1; shift
  if [ "$have_hyperfine" = 1 ]; then
    local js="$DIR/hf.json"
    hyperfine -N --style none --warmup 1 --runs "$runs" --export-json "$js" "$*" >/dev/null 2>"$DIR/hyperfine.log"
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$js"
  else
    "$PY" - "$runs" "$@" <<'EOF'
import subprocess, sys, time, statistics
runs, cmd = int(sys.argv[1]), sys.argv[2:]
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # warm-up
ts = []
for _ in range(runs):
    t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL); ts.append(time.perf_counter() - t)
print(statistics.median(ts))
EOF
  fi
}

# peak RSS in KiB (max of 3 runs), or "n/a"
peak_rss() {
  if [ "$have_time" = 0 ]; then echo n/a; return; fi
  local best=0 kb
  for _ in 1 2 3; do
    kb=$(/usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}')
    [ "$kb" -gt "$best" ] && best=$kb
  done
  echo "$best"
}

echo "comfyctl $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'), $("$PY" --version 2>&1), $(nproc) CPUs, timer: $([ $have_hyperfine = 1 ] && hyperfine --version || echo 'median loop')"
rows=()
for n in $SIZES; do
  f="$DIR/w$n-$SEED-$GEN.json"
  runs=$(runs_for "$n")
  tc=$(median_time "$runs" "$BIN" normalize "$f" -o "$DIR/out_comfyctl_$n.json")
  tp=$(median_time "$runs" "$PY" scripts/old_normalizer.py "$f" "$DIR/out_python_$n.json")
  rc=$(peak_rss "$BIN" normalize "$f" -o "$DIR/out_comfyctl_$n.json")
  rp=$(peak_rss "$PY" scripts/old_normalizer.py "$f" "$DIR/out_python_$n.json")
  rows+=("$n $tc $tp $rc $rp")
done
twan=$(median_time 50 "$BIN" normalize "$WAN" -o "$DIR/out_wan.json")

"$PY" - "$twan" "${rows[@]}" <<'EOF'
import sys
twan, rows = float(sys.argv[1]), [r.split() for r in sys.argv[2:]]
def ms(s): return f"{float(s) * 1000:.1f} ms"
def mib(k): return "n/a" if k == "n/a" else f"{int(k) / 1024:.1f} MiB"
print()
print(f"{'nodes':>7} | {'comfyctl':>10} | {'python':>10} | {'speedup':>7} | {'comfyctl RSS':>12} | {'python RSS':>10} | {'RSS ratio':>9}")
print("-" * 84)
t = {}
fails = []
for n, tc, tp, rc, rp in rows:
    n, tc, tp = int(n), float(tc), float(tp)
    t[n] = tc
    ratio = "n/a" if "n/a" in (rc, rp) else f"{int(rc) / int(rp):.2f}"
    print(f"{n:>7} | {ms(tc):>10} | {ms(tp):>10} | {tp / tc:>6.1f}x | {mib(rc):>12} | {mib(rp):>10} | {ratio:>9}")
    if n == 100000:
        if tp / tc < 15: fails.append(f"100k speedup {tp / tc:.1f}x < 15x")
        if ratio != "n/a" and float(ratio) >= 0.5: fails.append(f"100k RSS ratio {ratio} >= 0.5")
print()
if 10000 in t and 100000 in t:
    g = t[100000] / t[10000]
    print(f"comfyctl growth 10k -> 100k nodes: {g:.2f}x time (target <= 12x)")
    if g > 12: fails.append(f"growth {g:.2f}x > 12x")
print(f"wan_i2v.json (13 nodes), whole process: {twan * 1000:.2f} ms (target < 5 ms)")
if twan >= 0.005: fails.append(f"wan {twan * 1000:.2f} ms >= 5 ms")
print("targets: " + ("all met" if not fails else "NOT met: " + "; ".join(fails)))
EOF
