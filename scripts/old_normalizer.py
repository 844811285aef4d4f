#!/usr/bin/env python3
"""The old Python workflow normalizer, restated as the performance baseline for comfyctl.

    python3 scripts/old_normalizer.py IN.json OUT.json

What the tool comfyctl replaces did: load the API-format workflow with json.load, give every node
an ID from a fixed class-type table (unknown types: the class type lower-cased) plus a per-type
counter, in file order, rewrite every link [old_id, slot] to the new ID, and json.dump the result
with indent=2. No structural ordering, no validation: this is only the baseline that
scripts/bench_normalize.sh times comfyctl against, on the same files.
"""

import json
import sys

# The table from the old tool (the same as comfyctl's BUILTIN_NAMES in src/normalize.rs).
NODE_NAMES = {
    "LoadDiffusionModelShared //Inspire": "model_loader_1",
    "CLIPLoader": "clip_loader_1",
    "VAELoader": "vae_loader_1",
    "CLIPVisionLoader": "clip_vision_loader_1",
    "WanImageToVideo": "wan_i2v_1",
    "LoadImage": "load_image_1",
    "CLIPVisionEncode": "clip_vision_encode_1",
    "ModelSamplingSD3": "model_sampling_1",
    "KSampler": "ksampler_1",
    "VAEDecode": "vae_decode_1",
    "CLIPTextEncode": "clip_text_encode",
    "SaveAnimatedWEBP": "save_webp_1",
    "VHS_VideoCombine": "vhs_videocombine_1",
}


def new_name(class_type, k):
    first = NODE_NAMES.get(class_type)
    if first is None:
        return f"{class_type.lower()}_{k}"
    if k == 1:
        return first
    base = first[:-2] if first.endswith("_1") else first
    return f"{base}_{k}"


def normalize_workflow(workflow):
    counters = {}
    id_map = {}
    for old_id, node in workflow.items():
        class_type = node.get("class_type", "")
        counters[class_type] = counters.get(class_type, 0) + 1
        id_map[old_id] = new_name(class_type, counters[class_type])

    out = {}
    for old_id, node in workflow.items():
        inputs = {}
        for name, value in node.get("inputs", {}).items():
            if (
                isinstance(value, list)
                and len(value) == 2
                and isinstance(value[0], (str, int))
                and isinstance(value[1], int)
                and str(value[0]) in id_map
            ):
                value = [id_map[str(value[0])], value[1]]
            inputs[name] = value
        new_node = dict(node)
        new_node["inputs"] = inputs
        out[id_map[old_id]] = new_node
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: old_normalizer.py IN.json OUT.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    # The wrappers people have on disk: a RunPod request or a /prompt body.
    if isinstance(doc.get("input"), dict) and isinstance(doc["input"].get("workflow"), dict):
        doc["input"]["workflow"] = normalize_workflow(doc["input"]["workflow"])
    elif isinstance(doc.get("prompt"), dict) and "class_type" not in doc["prompt"]:
        doc["prompt"] = normalize_workflow(doc["prompt"])
    else:
        doc = normalize_workflow(doc)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
