//! `comfyctl diff` as a user (or CI) runs it: exit 0 identical, 1 different, 2 bad input.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Map, Value};
use std::fs;
use std::path::{Path, PathBuf};

fn comfyctl() -> Command {
    Command::cargo_bin("comfyctl").unwrap()
}

const SDXL: &str = "workflows/sdxl_t2i.json";

fn read(path: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(&fs::read_to_string(path).unwrap())
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn write(dir: &Path, name: &str, v: &Map<String, Value>) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// Every node renamed (`3` → `node_3_x`) and the node order reversed, links rewritten to match.
fn relabelled_reordered(w: &Map<String, Value>) -> Map<String, Value> {
    let new_id = |id: &str| format!("node_{id}_x");
    let mut out = Map::new();
    for (id, node) in w.iter().rev() {
        let mut node = node.clone();
        for v in node["inputs"].as_object_mut().unwrap().values_mut() {
            if let Some(a) = v.as_array_mut() {
                if a.len() == 2 && a[0].is_string() && a[1].is_u64() {
                    a[0] = Value::String(new_id(a[0].as_str().unwrap()));
                }
            }
        }
        out.insert(new_id(id), node);
    }
    out
}

fn diff_json(a: &Path, b: &Path, code: i32) -> Value {
    let out = comfyctl()
        .arg("diff")
        .arg(a)
        .arg(b)
        .arg("--json")
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn a_relabelled_reordered_copy_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let copy = relabelled_reordered(&read(SDXL));
    assert_ne!(
        copy.keys().collect::<Vec<_>>(),
        read(SDXL).keys().collect::<Vec<_>>()
    );
    let b = write(dir.path(), "copy.json", &copy);
    comfyctl()
        .args(["diff", SDXL])
        .arg(&b)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "identical (7 nodes after normalization)",
        ));
    let v = diff_json(Path::new(SDXL), &b, 0);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["identical"], true);
    for k in ["added", "removed", "changed", "rewired"] {
        assert_eq!(v[k], json!([]), "{k}");
    }
}

#[test]
fn a_changed_seed_is_exactly_that_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = relabelled_reordered(&read(SDXL));
    w["node_3_x"]["inputs"]["seed"] = json!(42);
    let b = write(dir.path(), "seed.json", &w);
    comfyctl()
        .args(["diff", SDXL])
        .arg(&b)
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "changed  ksampler_1.seed: 156680208700286 → 42  (node 3 → node_3_x)\n",
        ))
        .stdout(predicate::str::contains(
            "differ: 0 added, 0 removed, 1 changed, 0 rewired\n",
        ));
    let v = diff_json(Path::new(SDXL), &b, 1);
    assert_eq!(v["identical"], false);
    assert_eq!(
        v["changed"],
        json!([{"node": "ksampler_1", "class_type": "KSampler", "input": "seed",
                "old": 156680208700286u64, "new": 42}])
    );
    assert_eq!(v["added"], json!([]));
    assert_eq!(v["removed"], json!([]));
    assert_eq!(v["rewired"], json!([]));
}

#[test]
fn an_added_node_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = read(SDXL);
    w.insert(
        "20".into(),
        json!({"class_type": "PreviewImage", "inputs": {"images": ["8", 0]},
               "_meta": {"title": "peek"}}),
    );
    let b = write(dir.path(), "added.json", &w);
    comfyctl()
        .args(["diff", SDXL])
        .arg(&b)
        .assert()
        .code(1)
        .stdout(
            "added    preview_image_1 (PreviewImage \"peek\", node 20)\n\
             workflows/sdxl_t2i.json and "
                .to_string()
                + &b.display().to_string()
                + " differ: 1 added, 0 removed, 0 changed, 0 rewired\n",
        );
    // And the other way round it is a removal.
    let v = diff_json(&b, Path::new(SDXL), 1);
    assert_eq!(
        v["removed"],
        json!([{"node": "preview_image_1", "class_type": "PreviewImage", "title": "peek"}])
    );
    assert_eq!(v["added"], json!([]));
}

#[test]
fn rewired_links_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = read(SDXL);
    // The negative prompt's clip now from output 0; the decoder's VAE from a new loader.
    w["7"]["inputs"]["clip"] = json!(["4", 0]);
    w.insert(
        "30".into(),
        json!({"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}}),
    );
    w["8"]["inputs"]["vae"] = json!(["30", 0]);
    let b = write(dir.path(), "rewired.json", &w);
    let v = diff_json(Path::new(SDXL), &b, 1);
    assert_eq!(
        v["added"],
        json!([{"node": "vae_loader_1", "class_type": "VAELoader"}])
    );
    assert_eq!(v["changed"], json!([]));
    assert_eq!(
        v["rewired"],
        json!([
            {"node": "clip_text_encode_2", "class_type": "CLIPTextEncode", "input": "clip",
             "old": {"node": "checkpoint_loader_simple_1", "slot": 1},
             "new": {"node": "checkpoint_loader_simple_1", "slot": 0}},
            {"node": "vae_decode_1", "class_type": "VAEDecode", "input": "vae",
             "old": {"node": "checkpoint_loader_simple_1", "slot": 2},
             "new": {"node": "vae_loader_1", "slot": 0}},
        ])
    );
    comfyctl()
        .args(["diff", SDXL])
        .arg(&b)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
        "rewired  vae_decode_1.vae: checkpoint_loader_simple_1[2] → vae_loader_1[0]  (node 8)\n",
    ));
}

#[test]
fn bad_input_is_exit_2_naming_the_file() {
    for (bad, says) in [
        ("tests/fixtures/nope.json", "cannot read"),
        ("tests/fixtures/broken.json", "the workflow is invalid"),
        ("tests/fixtures/ui_format.json", "Export (API)"),
        (
            "workflows/example.png",
            "no workflow embedded (saved with --disable-metadata, or not made by ComfyUI)",
        ),
    ] {
        comfyctl()
            .args(["diff", SDXL, bad])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!("{bad}: ")))
            .stderr(predicate::str::contains(says));
    }
    // With --json the error is a JSON object on standard output.
    let out = comfyctl()
        .args(["diff", "--json", "workflows/example.png", SDXL])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("workflows/example.png: no workflow embedded"));
}

#[test]
fn the_real_webp_diffs_identical_to_the_workflow_it_embeds() {
    // The embedded prompt has the RunPod worker's IDs (load_image_1, ...) and ComfyUI's
    // `is_changed`; the JSON has the IDs it was sent with (10..14).
    comfyctl()
        .args([
            "diff",
            "tests/fixtures/runpod_output.webp",
            "tests/fixtures/readback/runpod_output_prompt.json",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("identical (5 nodes"));
    // Standard input works as one side.
    comfyctl()
        .args([
            "diff",
            "-",
            "tests/fixtures/readback/runpod_output_prompt.json",
        ])
        .write_stdin(fs::read("tests/fixtures/runpod_output.webp").unwrap())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("identical (5 nodes"));
}

#[test]
fn a_ui_workflow_diffs_with_a_schema() {
    let s = "tests/fixtures/schema";
    comfyctl()
        .args([
            "diff",
            &format!("{s}/ui_basic.json"),
            &format!("{s}/ui_basic.api.json"),
        ])
        .args(["--object-info", &format!("{s}/object_info_min.json")])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("identical (8 nodes"));
}

#[test]
fn outputs_diff_against_the_workflows_sent() {
    for (out, sent) in [
        ("comfyui_8x8.png", "png_sent.json"),
        ("comfyui_8x8.mp4", "mp4_sent.json"),
    ] {
        let dir = "tests/fixtures/readback";
        comfyctl()
            .args(["diff", &format!("{dir}/{sent}"), &format!("{dir}/{out}")])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("identical"));
    }
}
