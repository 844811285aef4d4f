"""A small RunPod worker handler that behaves like worker-comfyui's, without ComfyUI.

Used by tests/runpod_sdk.rs with the runpod SDK's local API server:

    python handler.py --rp_serve_api --rp_api_host 127.0.0.1 --rp_api_port PORT

Like worker-comfyui (handler.py, v5.8.x) it validates `input` (a JSON string is parsed),
requires an object `workflow`, decodes every `input.images[*].image` (stripping a data-URI
prefix), checks that each LoadImage node names an uploaded image, and answers
`{"images": [{"filename", "type": "base64", "data"}]}` with a real animated WEBP
(tests/fixtures/runpod_output.webp, 192x192, 2 frames).

Failing on request (so tests can exercise FAILED jobs):
  * a node with class_type "ComfyctlFail" -> {"error": "Job processing failed", "details": [...]}
    (the SDK turns it into status FAILED and drops `details`, as with the real worker);
  * a node with class_type "ComfyctlRaise" -> an exception (error = JSON string with traceback);
  * a node with class_type "ComfyctlNoImages" -> {"status": "success_no_images", "images": []}.
"""

import base64
import binascii
import json
import os

import runpod

HERE = os.path.dirname(os.path.abspath(__file__))
WEBP_PATH = os.path.join(HERE, "..", "fixtures", "runpod_output.webp")
with open(WEBP_PATH, "rb") as f:
    WEBP = f.read()

IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def looks_like_image(b):
    return b.startswith(IMAGE_MAGIC) or (b[:4] == b"RIFF" and b[8:12] == b"WEBP")


def validate_input(job_input):
    if job_input is None:
        return None, "Please provide input"
    if isinstance(job_input, str):
        try:
            job_input = json.loads(job_input)
        except json.JSONDecodeError:
            return None, "Invalid JSON format in input"
    workflow = job_input.get("workflow")
    if workflow is None:
        return None, "Missing 'workflow' parameter"
    images = job_input.get("images")
    if images is not None:
        if not isinstance(images, list) or not all(
            isinstance(i, dict) and "name" in i and "image" in i for i in images
        ):
            return None, "'images' must be a list of objects with 'name' and 'image' keys"
    return {"workflow": workflow, "images": images or []}, None


def handler(job):
    validated, error = validate_input(job.get("input"))
    if error:
        return {"error": error}
    workflow = validated["workflow"]

    uploaded = {}
    problems = []
    for entry in validated["images"]:
        data = entry["image"]
        if "," in data:
            data = data.split(",", 1)[1]
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            problems.append(f"Error decoding {entry['name']}: {e}")
            continue
        if not looks_like_image(raw):
            problems.append(f"{entry['name']} is not an image")
            continue
        uploaded[entry["name"]] = raw
    if problems:
        return {"error": "Failed to upload one or more input images", "details": problems}

    # Iterating the workflow as a dict: a workflow sent as a string raises here, as in the
    # real worker (the SDK then reports the exception as a JSON string with a traceback).
    classes = {}
    for node_id in workflow.keys():
        node = workflow[node_id]
        classes[node_id] = node.get("class_type")

    errors = []
    for node_id, cls in classes.items():
        if cls == "LoadImage":
            name = workflow[node_id].get("inputs", {}).get("image")
            if name not in uploaded:
                errors.append(
                    f"• Node {node_id} (errors): [{{'type': 'custom_validation_failed', "
                    f"'message': 'Custom validation failed for node', "
                    f"'details': 'image - Invalid image file: {name}'}}]"
                )
    if errors:
        return {"error": "Workflow validation failed:\n" + "\n".join(errors)}

    if "ComfyctlRaise" in classes.values():
        raise RuntimeError("handler exception requested by the workflow")
    if "ComfyctlFail" in classes.values():
        return {
            "error": "Job processing failed",
            "details": ["Workflow execution error: Node Type: ComfyctlFail, Message: failure requested"],
        }
    if "ComfyctlNoImages" in classes.values():
        return {"status": "success_no_images", "images": []}

    return {
        "images": [
            {
                "filename": "comfyctl_sdk_00001_.webp",
                "type": "base64",
                "data": base64.b64encode(WEBP).decode("ascii"),
            }
        ]
    }


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
