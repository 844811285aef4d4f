#!/usr/bin/env bash
# Benchmark: `comfyctl send` against a REAL ComfyUI, side by side with comfy-cli's `comfy run --wait`.
#
# Uses the model-free workflow shared/fixtures/workflows/wf_webp_emptyimage.json (three EmptyImage
# frames, two ImageBatch, one SaveAnimatedWEBP; runs on a CPU-only server in well under a second).
#
#   1. Cached: the server is warmed once, then the same prompt is sent RUNS times by comfyctl and
#      RUNS times by comfy-cli, interleaved (comfyctl, comfy-cli, comfyctl, ...), so both see the
#      same server state. Every node is taken from ComfyUI's cache, so the wall time is nothing but
#      the client: process start, reading the workflow, the requests, following the prompt, and
#      (comfyctl only) saving the output file.
#      comfyctl: `send WF --url URL -o NEW_DIR -q --json` (a new -o directory per run, so no delete
#      is timed); its `timings.total_s` is read from the --json.
#      comfy-cli: `comfy --skip-prompt run --workflow WF --host H --port P --wait` (it takes the
#      API-format file as is; it does NOT download the output, it only prints its /view URL). It
#      runs with HOME and XDG_CONFIG_HOME in a temporary directory (its config and job files land
#      there), tracking disabled, COMFY_NO_WATCH=1; `run` only talks to --host/--port, it neither
#      installs nor launches a ComfyUI.
#   2. Uncached: RUNS comfyctl sends with `--set 1.color=...` different each time (node 1 is the
#      "red frame" EmptyImage; nodes 1, 4, 5, 6 re-run). Compared with what cannot be avoided: the
#      run time comfyctl measured (`timings.run_s`, execution start to the prompt's end) plus
#      fetching the same output with curl from /view (wall time with curl's process start, like
#      comfyctl's; curl's own time_total, the transfer alone, is shown too).
#      The server's own execution time from /history (execution_start -> execution_success
#      timestamps) is shown as a cross-check of run_s.
#
# Wall time per run: bash's $EPOCHREALTIME read just before and just after each command (no fork
# of `date` inside the measured interval). Per-run values go to TSV files; medians, min and max
# are printed as a Markdown table at the end.
#
# Targets: cached send <= 15 ms median wall on loopback, and >= 40x faster than comfy-cli.
#
#   COMFY_TEST_URL=http://127.0.0.1:8188 scripts/bench_send_real.sh          # RUNS=20
#   COMFY_TEST_URL=http://127.0.0.1:8188 RUNS=50 scripts/bench_send_real.sh
#
# Environment: COMFY_TEST_URL (required; unset = skip), RUNS (20), SHARED (the shared/ checkout,
# default ../shared from the repo root), COMFYCTL (default target/release/comfyctl; build it first
# with `cargo build --release --bin comfyctl`), COMFY_CLI (the `comfy` executable; default `comfy`
# on PATH, else /tmp/comfycli-venv/bin/comfy; install with `pip install comfy-cli` in a venv).
set -euo pipefail

if [ -z "${COMFY_TEST_URL:-}" ]; then
  echo "bench_send_real: skipped: COMFY_TEST_URL is not set (point it at a running ComfyUI, e.g. COMFY_TEST_URL=http://127.0.0.1:8188)"
  exit 0
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$repo/../shared}
WF=${WF:-$SHARED/fixtures/workflows/wf_webp_emptyimage.json}
RUNS=${RUNS:-20}
URL=${COMFY_TEST_URL%/}
BIN=${COMFYCTL:-$repo/target/release/comfyctl}

[ -f "$WF" ] || { echo "bench_send_real: workflow not found: $WF (set SHARED to the shared/ checkout)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench_send_real: $BIN not found; build it first: cargo build --release --bin comfyctl" >&2; exit 1; }
curl -sf -o /dev/null "$URL/system_stats" || { echo "bench_send_real: no ComfyUI answering at $URL/system_stats" >&2; exit 1; }

read -r HOST PORT < <(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port or (443 if p.scheme == "https" else 80))' "$URL")
comfy_version=$(curl -s "$URL/system_stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["system"].get("comfyui_version", "?"))')

work=$(mktemp -d /tmp/bench_send_real.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/.config" "$work/out"

# comfy-cli: found, isolated, and able to run against this server? Otherwise say why and go on.
COMFY_CLI=${COMFY_CLI:-$(command -v comfy || echo /tmp/comfycli-venv/bin/comfy)}
cc_why=""
cc_version=""
comfy_cli() {
  HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" COMFY_NO_WATCH=1 "$COMFY_CLI" --skip-prompt "$@"
}
if [ ! -x "$COMFY_CLI" ]; then
  cc_why="comfy-cli not found ($COMFY_CLI): install it with 'python3 -m venv /tmp/comfycli-venv && /tmp/comfycli-venv/bin/pip install comfy-cli' or set COMFY_CLI"
else
  # `comfy --version` answers with a JSON envelope when stdout is not a terminal.
  cc_version=$(comfy_cli --version 2>/dev/null | python3 -c 'import json, sys
t = sys.stdin.read().strip()
try: print("comfy-cli " + json.loads(t.splitlines()[-1])["data"]["version"])
except Exception: print(t)' || true)
  comfy_cli tracking disable >/dev/null 2>&1 || true
fi

# The last lines comfy-cli (or the envelope check) wrote to stderr, on one line.
cc_tail() { cat "$work/cc.err" "$work/cc.chk" 2>/dev/null | tail -n3 | tr '\n' ' ' || true; }
# One comfy-cli run; fails unless its envelope says the prompt completed.
cc_run() {
  comfy_cli run --workflow "$WF" --host "$HOST" --port "$PORT" --wait >"$work/cc.json" 2>"$work/cc.err"
}
cc_check() {
  python3 - "$work/cc.json" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
env = json.loads(lines[-1])
d = env.get("data") or {}
if not env.get("ok") or d.get("status") != "completed":
    sys.exit("comfy-cli did not complete: %s" % (env.get("error") or d.get("status")))
print(len(d.get("cached_node_ids") or []))
EOF
}

# Warm-up: one comfyctl send (puts every node in ComfyUI's cache) and one comfy-cli run (its
# first start also writes Python's bytecode cache and its config).
"$BIN" send "$WF" --url "$URL" -o "$work/out/warm" -q --json >"$work/warm.json"
if [ -z "$cc_why" ]; then
  if ! cc_run || ! cc_check >/dev/null 2>"$work/cc.chk"; then
    cc_why="comfy-cli could not run against $URL: $(cc_tail)"
  fi
fi

echo "bench_send_real: $(date -u +%Y-%m-%dT%H:%MZ), ComfyUI $comfy_version at $URL, $(nproc) cores, RUNS=$RUNS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  workflow: $WF"
echo "  comfyctl: $("$BIN" --version 2>/dev/null || echo "$BIN")"
if [ -n "$cc_why" ]; then echo "  comfy-cli: NOT MEASURED: $cc_why"; else echo "  comfy-cli: $cc_version ($COMFY_CLI)"; fi

# Wall clock in microseconds into T, without a fork (bash 5's EPOCHREALTIME; else date +%s%N).
if [ -n "${EPOCHREALTIME:-}" ]; then stamp() { T=${EPOCHREALTIME/[.,]/}; }; else stamp() { T=$(( $(date +%s%N) / 1000 )); }; fi

# 1. Cached, interleaved.
: >"$work/cached.tsv"
: >"$work/cc.tsv"
for i in $(seq "$RUNS"); do
  stamp; t=$T
  "$BIN" send "$WF" --url "$URL" -o "$work/out/c$i" -q --json >"$work/r.json"
  stamp; us=$((T - t))
  python3 - "$work/r.json" "$us" "$work/phases" >>"$work/cached.tsv" <<'EOF'
import json, sys
def phases(r, path):
    t = r["timings"]
    f = lambda k: "-" if t.get(k) is None else "%.0f" % (t[k] * 1000)
    open(path, "w").write("[submit %s, queue_wait %s, run %s, download %s ms; %s]" % (
        f("submit_s"), f("queue_wait_s"), f("run_s"), f("download_s"), r.get("followed_by")))
r = json.load(open(sys.argv[1]))
phases(r, sys.argv[3])
assert r["status"] == "completed", r
print(int(sys.argv[2]) / 1000, r["timings"]["total_s"] * 1000, int(bool(r.get("all_cached"))), sep="\t")
EOF
  line="$(tail -n1 "$work/cached.tsv" | awk -F'\t' '{printf "comfyctl wall %5.1f ms, total_s %5.1f ms, all_cached %d", $1, $2, $3}') $(cat "$work/phases")"
  if [ -z "$cc_why" ]; then
    stamp; t=$T
    cc_ok=1; cc_run || cc_ok=0
    stamp; us=$((T - t))
    if [ "$cc_ok" = 1 ] && cached_nodes=$(cc_check 2>"$work/cc.chk"); then
      printf '%s\t%s\n' "$(awk -v u="$us" 'BEGIN {print u / 1000}')" "$cached_nodes" >>"$work/cc.tsv"
      line="$line  |  comfy-cli wall $(awk -v u="$us" 'BEGIN {printf "%7.1f", u / 1000}') ms, cached nodes $cached_nodes"
    else
      cc_why="comfy-cli failed on cached run $i: $(cc_tail)"
      line="$line  |  $cc_why"
    fi
  fi
  printf '  cached   %2d: %s\n' "$i" "$line"
done

# 2. Uncached: a new color for node 1 each run.
: >"$work/uncached.tsv"
for i in $(seq "$RUNS"); do
  color=$(( 16711680 - i * 7 - $$ % 1000 * 131 ))
  stamp; t=$T
  "$BIN" send "$WF" --url "$URL" -o "$work/out/u$i" -q --json --set "1.color=$color" >"$work/r.json"
  stamp; us=$((T - t))
  read -r job view < <(python3 - "$work/r.json" "$URL" <<'EOF'
import json, sys, urllib.parse as u
r = json.load(open(sys.argv[1]))
assert r["status"] == "completed" and not r.get("all_cached"), r
name = r["outputs"][0]["server_name"]
sub, _, fn = name.rpartition("/")
print(r["job_id"], sys.argv[2] + "/view?" + u.urlencode({"filename": fn, "subfolder": sub, "type": "output"}))
EOF
  )
  mkdir -p "$work/out/curl$i"
  stamp; t=$T
  curl_xfer=$(curl -sf -o "$work/out/curl$i/out.webp" -w '%{time_total}' "$view")
  stamp; curl_us=$((T - t))
  curl -sf "$URL/history/$job" >"$work/h.json"
  python3 - "$work/r.json" "$work/h.json" "$job" "$us" "$curl_us" "$curl_xfer" "$work/phases" >>"$work/uncached.tsv" <<'EOF'
import json, sys
def phases(r, path):
    t = r["timings"]
    f = lambda k: "-" if t.get(k) is None else "%.0f" % (t[k] * 1000)
    open(path, "w").write("[submit %s, queue_wait %s, run %s, download %s ms; %s]" % (
        f("submit_s"), f("queue_wait_s"), f("run_s"), f("download_s"), r.get("followed_by")))
r = json.load(open(sys.argv[1]))
phases(r, sys.argv[7])
h = json.load(open(sys.argv[2]))[sys.argv[3]]
ts = {m[0]: m[1].get("timestamp") for m in h["status"]["messages"]}
server_ms = ts["execution_success"] - ts["execution_start"] if "execution_start" in ts and "execution_success" in ts else float("nan")
wall, curl = int(sys.argv[4]) / 1000, int(sys.argv[5]) / 1000
run = r["timings"]["run_s"] * 1000
print(wall, r["timings"]["total_s"] * 1000, run, server_ms, curl, wall - run - curl, float(sys.argv[6]) * 1000, sep="\t")
EOF
  tail -n1 "$work/uncached.tsv" | awk -F'\t' -v i="$i" '{printf "  uncached %2d: comfyctl wall %5.1f ms, total_s %5.1f, run_s %5.1f, server %5.1f, curl /view %5.1f (transfer %4.1f), wall-(run_s+curl) %5.1f ms ", i, $1, $2, $3, $4, $5, $7, $6}'
  cat "$work/phases"; echo
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (anything else busy on the machine shows in the max and the spread)"
python3 - "$work" "$RUNS" "${cc_why:+x}" "$cc_why" "$WF" <<'EOF'
import json, statistics as st, sys
work, runs, cc_missing = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "x"
def cols(name):
    rows = [list(map(float, l.split("\t"))) for l in open(f"{work}/{name}") if l.strip()]
    return list(zip(*rows)) if rows else []
def row(label, xs):
    print(f"| {label} | {st.median(xs):.1f} | {min(xs):.1f} | {max(xs):.1f} |")
cached = cols("cached.tsv")
unc = cols("uncached.tsv")
print()
print(f"| {runs} runs each | median ms | min ms | max ms |")
print("| --- | ---: | ---: | ---: |")
row("comfyctl send, cached: wall", cached[0])
row("comfyctl send, cached: `timings.total_s`", cached[1])
cc = cols("cc.tsv") if not cc_missing else []
if cc:
    row("comfy-cli `run --wait`, cached: wall", cc[0])
row("comfyctl send, uncached: wall", unc[0])
row("uncached: `timings.run_s` (comfyctl)", unc[2])
row("uncached: server's execution (/history timestamps)", unc[3])
row("uncached: curl of the same /view (wall)", unc[4])
row("uncached: curl of the same /view (its own time_total: no process start)", unc[6])
row("uncached: run_s + curl", [a + b for a, b in zip(unc[2], unc[4])])
row("uncached: wall − (run_s + curl)", unc[5])
print()
allc = int(sum(cached[2]))
print(f"comfyctl cached runs reported all_cached: {allc} of {len(cached[2])}")
if cc:
    n = len(json.load(open(sys.argv[5])))
    print(f"comfy-cli cached runs with all {n} nodes cached: {sum(1 for c in cc[1] if c == n)} of {len(cc[1])}")
med = st.median(cached[0])
ok1 = med <= 15
print(f"target: cached send <= 15 ms median wall: {med:.1f} ms -> {'MET' if ok1 else 'NOT MET'}")
if cc:
    ratio = st.median(cc[0]) / med
    ratios = sorted(a / b for a, b in zip(cc[0], cached[0]))
    ok2 = ratio >= 40
    print(f"target: >= 40x faster than comfy-cli: median {st.median(cc[0]):.0f} / {med:.1f} ms = {ratio:.1f}x "
          f"(per interleaved pair: {ratios[0]:.1f}x .. {ratios[-1]:.1f}x) -> {'MET' if ok2 else 'NOT MET'}")
    print("  (comfy-cli only prints the output's /view URL; comfyctl's wall also includes downloading and saving it)")
else:
    print("target: >= 40x faster than comfy-cli: NOT MEASURED: " + sys.argv[4])
print(f"uncached: comfyctl wall {st.median(unc[0]):.1f} ms vs run_s + curl {st.median([a + b for a, b in zip(unc[2], unc[4])]):.1f} ms "
      f"(median difference {st.median(unc[5]):.1f} ms)")
EOF
