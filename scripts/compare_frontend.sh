#!/usr/bin/env bash
# Measures `comfyctl convert` against ComfyUI's own web frontend: every UI-format workflow in a
# templates directory is exported to API format by the real frontend (`app.graphToPrompt()` in
# headless Chromium, scripts/frontend_export.mjs) and converted by comfyctl with the same server's
# /object_info; the two API maps are compared as parsed JSON (key order ignored).
#
#   scripts/compare_frontend.sh COMFY_URL TEMPLATES_DIR [WORK_DIR]
#   scripts/compare_frontend.sh COMFY_URL --classes [WORK_DIR]
#
# --classes probes every node class of the server instead: one single-node workflow per class
# with widgets_values ["v0", "v1", ...] (checks which widget slot feeds which input, including
# hidden control/upload slots) and one without widgets_values (checks defaults). Skipped:
# Load3D/Load3DAnimation (the frontend uploads a screenshot to the server at export) and
# LoadImageOutput (its value is replaced from the server's output-file list).
#
# Prerequisites (not project dependencies; this is not part of the test suite):
#   * a running ComfyUI at COMFY_URL (the measured one: ComfyUI 0.3.64, frontend 1.27.10, CPU, no
#     models needed), e.g. `python main.py --cpu --listen 127.0.0.1 --port 8188`;
#   * Chromium at $CHROMIUM (default /usr/bin/chromium; Debian: `apt-get install chromium`);
#   * node >= 18 and playwright-core: `npm install --prefix /tmp/gold-js playwright-core`, then
#     NODE_PATH=/tmp/gold-js/node_modules (the default used here when NODE_PATH is unset);
#   * python3 (for the comparison), and TEMPLATES_DIR holding UI-format *.json files, e.g. the
#     `comfyui_workflow_templates/templates` folder of the comfyui-workflow-templates wheel that
#     ComfyUI installs. Templates are third-party data: keep them and the exports out of the repo.
#
# FRONTEND_NOW=2026-03-04T05:06:07Z fixes the frontend's clock (time zone FRONTEND_TZ, default
# then UTC) and comfyctl's (COMFYCTL_NOW), so that `%date:FMT%` in filename prefixes compares
# equal. Dynamic prompt choices (`{a|b}`) are random in the frontend and the first option in
# comfyctl; such differences are reported as "dynamic prompt text".
#
# WORK_DIR (default /tmp/gold, with --classes /tmp/gold-classes) receives object_info.json, <name>.api.json (frontend exports, reused
# on reruns; delete them or set REFRESH=1 to export again), <name>.comfyctl.json, and
# report.txt listing every difference. Uses target/release/comfyctl (built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${1:?usage: scripts/compare_frontend.sh COMFY_URL TEMPLATES_DIR [WORK_DIR]}
DIR=${2:?usage: scripts/compare_frontend.sh COMFY_URL TEMPLATES_DIR [WORK_DIR]}
WORK=${3:-/tmp/gold}
[ "$DIR" = --classes ] && WORK=${3:-/tmp/gold-classes}
BIN=target/release/comfyctl
export NODE_PATH=${NODE_PATH:-/tmp/gold-js/node_modules}
[ -x "$BIN" ] || cargo build --release -q
if [ -n "${FRONTEND_NOW:-}" ]; then
  export FRONTEND_TZ=${FRONTEND_TZ:-UTC} COMFYCTL_NOW=${COMFYCTL_NOW:-$FRONTEND_NOW}
fi
mkdir -p "$WORK"
curl -fsS "${URL%/}/object_info" -o "$WORK/object_info.json"
if [ "$DIR" = --classes ]; then
  DIR=$WORK/classes
  mkdir -p "$DIR"
  python3 - "$WORK/object_info.json" "$DIR" <<'EOF'
import json, sys
oi = json.load(open(sys.argv[1]))
for c in sorted(oi):
    if c in ("Load3D", "Load3DAnimation", "LoadImageOutput"):
        continue
    for suffix, values in (("", ["v%d" % i for i in range(16)]), (".defaults", None)):
        n = {"id": 1, "type": c, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": 0,
             "mode": 0, "inputs": [], "outputs": [], "properties": {}}
        if values is not None:
            n["widgets_values"] = values
        wf = {"last_node_id": 1, "last_link_id": 0, "nodes": [n], "links": [], "groups": [],
              "config": {}, "extra": {}, "version": 0.4}
        name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in c)
        json.dump(wf, open(f"{sys.argv[2]}/{name}{suffix}.json", "w"))
EOF
fi

# UI-format workflows only (index.json and friends are not).
mapfile -t FILES < <(python3 - "$DIR" <<'EOF'
import json, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        d = json.loads(p.read_text())
    except Exception:
        continue
    if isinstance(d, dict) and isinstance(d.get("nodes"), list):
        print(p)
EOF
)
TODO=()
for f in "${FILES[@]}"; do
  n=$(basename "$f" .json); n=${n%.ui}
  if [ -n "${REFRESH:-}" ] || [ ! -f "$WORK/$n.api.json" ]; then TODO+=("$f"); fi
done
if [ ${#TODO[@]} -gt 0 ]; then
  node scripts/frontend_export.mjs "$URL" "$WORK" "${TODO[@]}" || true
fi
for f in "${FILES[@]}"; do
  n=$(basename "$f" .json); n=${n%.ui}
  "$BIN" convert --object-info "$WORK/object_info.json" "$f" -o "$WORK/$n.comfyctl.json" \
    2>"$WORK/$n.comfyctl.err" || echo "$n: comfyctl convert failed: $(head -c 300 "$WORK/$n.comfyctl.err")"
done
printf '%s\n' "${FILES[@]}" > "$WORK/files.txt"
python3 - "$WORK" <<'EOF'
import json, sys, pathlib, re, collections
work = pathlib.Path(sys.argv[1])
known = set(json.loads((work / "object_info.json").read_text()))
files = [pathlib.Path(l) for l in (work / "files.txt").read_text().split("\n") if l]

def name_of(p):
    n = p.name[:-5]
    return n[:-3] if n.endswith(".ui") else n

def dyn(s):
    # Text the frontend's dynamic prompts rewrite at export ({a|b} choices, comments, escapes).
    return isinstance(s, str) and bool(re.search(r"[{}]|//|/\*|\\", s))

def canon(v):
    # Parsed-JSON equality with JS number semantics (8 == 8.0) but bool != number.
    if isinstance(v, bool): return ("bool", v)
    if isinstance(v, (int, float)): return ("num", float(v))
    if isinstance(v, list): return [canon(x) for x in v]
    if isinstance(v, dict): return {k: canon(x) for k, x in v.items()}
    return v

def strict(v):
    # Also tells 8 from 8.0: the frontend writes JS numbers, and so should comfyctl.
    if isinstance(v, bool): return ("bool", v)
    if isinstance(v, (int, float)): return (type(v).__name__, v)
    if isinstance(v, list): return [strict(x) for x in v]
    if isinstance(v, dict): return {k: strict(x) for k, x in v.items()}
    return v

same_number_form = 0
exact, nogold, failed = [], [], []
cats = collections.defaultdict(list)
lines = []
for p in files:
    n = name_of(p)
    g, c = work / f"{n}.api.json", work / f"{n}.comfyctl.json"
    if not g.exists():
        nogold.append(n); continue
    if not c.exists() or c.stat().st_size == 0:
        failed.append(n); continue
    gold, ours = json.loads(g.read_text()), json.loads(c.read_text())
    if canon(gold) == canon(ours):
        exact.append(n)
        same_number_form += strict(gold) == strict(ours)
        continue
    diffs = []
    for k in sorted(set(gold) | set(ours)):
        a, b = gold.get(k), ours.get(k)
        if canon(a) == canon(b): continue
        where = "subgraph" if ":" in k else "root"
        cls = (b or a).get("class_type")
        if cls not in known:
            # The frontend cannot build a class the server lacks: it sends the node without
            # class_type and its widget values under "UNKNOWN"; comfyctl keeps the class (and
            # says so) so that the server's error names it.
            diffs.append(("any", "class not on this server", f"{k} ({cls})")); continue
        if a is None:
            diffs.append((where, "extra node", f"{k} ({b.get('class_type')}) only in comfyctl")); continue
        if b is None:
            diffs.append((where, "missing node", f"{k} ({a.get('class_type')}) only in frontend")); continue
        for f in ("class_type", "_meta"):
            if canon(a.get(f)) != canon(b.get(f)):
                diffs.append((where, f, f"{k}: {f} frontend={a.get(f)!r} comfyctl={b.get(f)!r}"))
        ai, bi = a.get("inputs", {}), b.get("inputs", {})
        for i in sorted(set(ai) | set(bi)):
            if canon(ai.get(i)) == canon(bi.get(i)) and (i in ai) == (i in bi): continue
            kind = "input value"
            if i not in bi: kind = "input missing in comfyctl"
            elif i not in ai: kind = "input only in comfyctl"
            elif dyn(ai.get(i)) or dyn(bi.get(i)): kind = "dynamic prompt text"
            diffs.append((where, kind, f"{k} {a.get('class_type', b.get('class_type'))}.{i}: frontend={json.dumps(ai.get(i))[:120]} comfyctl={json.dumps(bi.get(i))[:120]}"))
    kinds = sorted({f"{w}: {k}" for w, k, _ in diffs})
    for k in kinds: cats[k].append(n)
    lines.append(f"== {n}  [{'; '.join(kinds)}]")
    lines += ["   " + d for _, _, d in diffs]
total = len(files) - len(nogold)
summary = [f"UI-format workflows: {len(files)}; exported by the frontend: {total}",
           f"comfyctl convert == frontend graphToPrompt (parsed JSON): {len(exact)} of {total}",
           f"  of which also with the same number forms (8 vs 8.0): {same_number_form}",
           f"comfyctl failed: {len(failed)} {failed[:10]}",
           f"no frontend export (see *.error): {len(nogold)} {nogold[:10]}",
           "differences by kind (templates, examples):"]
for k, v in sorted(cats.items(), key=lambda kv: -len(kv[1])):
    summary.append(f"  {len(v):4}  {k}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}")
(work / "report.txt").write_text("\n".join(summary + [""] + lines) + "\n")
print("\n".join(summary))
print(f"details: {work / 'report.txt'}")
EOF
