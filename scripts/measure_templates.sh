#!/usr/bin/env bash
# Converts and verifies every UI-format workflow of the public comfyui-workflow-templates-json
# package against a saved /object_info, and counts how many convert and how many verify clean.
#
#   scripts/measure_templates.sh [OBJECT_INFO] [TEMPLATES_DIR]
#
# Defaults: ../shared/fixtures/captures/object_info.json and /tmp/comfyctl-templates (the wheel
# is downloaded there with `pip download --no-deps comfyui-workflow-templates-json` when missing;
# the templates are never committed). Uses the release binary (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
OI=${1:-../shared/fixtures/captures/object_info.json}
[ -f "$OI" ] || OI=/work/shared/fixtures/captures/object_info.json
DIR=${2:-/tmp/comfyctl-templates}
BIN=target/release/comfyctl
[ -x "$BIN" ] || cargo build --release -q
if ! ls "$DIR"/templates/*.json >/dev/null 2>&1; then
  mkdir -p "$DIR/wheel"
  pip download -q --no-deps -d "$DIR/wheel" comfyui-workflow-templates-json
  python3 -m zipfile -e "$DIR"/wheel/comfyui_workflow_templates_json-*.whl "$DIR/wheel/x"
  mkdir -p "$DIR/templates"
  cp "$DIR"/wheel/x/comfyui_workflow_templates_json/templates/*.json "$DIR/templates/"
fi
OUT=$(mktemp -d)
total=0; converted=0; all_known=0; clean=0; clean_but_models=0
: > "$OUT/failures.txt"
for f in "$DIR"/templates/*.json; do
  # index.json and friends are not workflows
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if isinstance(d,dict) and isinstance(d.get("nodes"),list) else 1)' "$f" || continue
  total=$((total+1))
  if "$BIN" convert --object-info "$OI" "$f" -o "$OUT/api.json" 2>"$OUT/err.txt"; then
    converted=$((converted+1))
    grep -q "is not on the server" "$OUT/err.txt" || all_known=$((all_known+1))
    if "$BIN" verify --json --object-info "$OI" "$OUT/api.json" >"$OUT/v.json" 2>/dev/null; then
      clean=$((clean+1))
    else
      # Errors other than model files / input images the capture server does not have?
      if python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
errs=[x for f in d["files"] for x in f["diagnostics"] if x["severity"]=="error"]
sys.exit(0 if all(e["code"]=="value_not_in_list" for e in errs) else 1)' "$OUT/v.json"; then
        clean_but_models=$((clean_but_models+1))
      fi
    fi
  else
    echo "$(basename "$f"): $(head -c 300 "$OUT/err.txt")" >> "$OUT/failures.txt"
  fi
done
echo "UI-format templates:             $total"
echo "converted without error:         $converted"
echo "  of which every class is known:  $all_known  (others use nodes newer than the capture's ComfyUI 0.3.64 or custom nodes)"
echo "verify clean (no errors):        $clean"
echo "only value_not_in_list errors:   $clean_but_models  (model files/images the capture server lacks)"
echo "conversion failures: $OUT/failures.txt"
