//! `comfyctl verify` as a user (and a script) runs it.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::fs;

fn comfyctl() -> Command {
    Command::cargo_bin("comfyctl").unwrap()
}

#[test]
fn shipped_workflows_verify_clean() {
    for f in [
        "workflows/wan_i2v.json",
        "workflows/wan_i2v.normalized.json",
        "workflows/sdxl_t2i.json",
        "workflows/cpu_smoke_webp.json",
    ] {
        comfyctl()
            .args(["verify", "--strict", f])
            .assert()
            .success()
            .stdout(predicate::str::contains(": ok:"));
    }
}

#[test]
fn summarises_injection_points() {
    comfyctl()
        .args(["verify", "workflows/wan_i2v.json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("image:    node 52 (normalized: load_image_1) \"Load Image\", currently flux_dev_example.png"))
        .stdout(predicate::str::contains("positive: node 6 (normalized: clip_text_encode)"))
        .stdout(predicate::str::contains("negative: node 7 (normalized: clip_text_encode_2)"))
        .stdout(predicate::str::contains("seed:     node 3 (normalized: ksampler_1) input 'seed'"));
}

#[test]
fn json_output_is_machine_readable() {
    let out = comfyctl()
        .args([
            "verify",
            "--json",
            "workflows/wan_i2v.json",
            "tests/fixtures/broken.json",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"][0]["valid"], true);
    assert_eq!(v["files"][0]["injection"]["positive"][0]["node"], "6");
    assert_eq!(v["files"][0]["normalized_ids"]["55"], "model_loader_1");
    let broken = &v["files"][1];
    assert_eq!(broken["valid"], false);
    let diags = broken["diagnostics"].as_array().unwrap();
    let missing = diags.iter().find(|d| d["code"] == "missing_node").unwrap();
    assert_eq!(missing["node_id"], "2");
    assert_eq!(missing["title"], "Invert it");
    assert_eq!(missing["class_type"], "ImageInvert");
    assert_eq!(missing["input"], "image");
    assert_eq!(missing["file"], "tests/fixtures/broken.json");
    assert!(missing["fix"].as_str().unwrap().contains("reconnect"));
}

#[test]
fn every_problem_is_reported_with_a_fix() {
    comfyctl()
        .args(["verify", "tests/fixtures/broken.json"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error[missing_node]: node 2 \"Invert it\" (ImageInvert) input 'image'",
        ))
        .stdout(predicate::str::contains("error[node_not_object]: node 4"))
        .stdout(predicate::str::contains(
            "error[missing_class_type]: node 5",
        ))
        .stdout(predicate::str::contains("fix: "))
        .stdout(predicate::str::contains("FAILED"));
}

#[test]
fn ui_format_and_parse_errors_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    fs::write(&bad, "{\"1\": [}").unwrap();
    comfyctl()
        .args(["verify", "tests/fixtures/ui_format.json"])
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error[ui_format]"))
        .stdout(predicate::str::contains("Export (API)"))
        .stdout(predicate::str::contains("bad.json:1:8: error[parse]"));
}

#[test]
fn cycles_and_bad_indices() {
    let w = r#"{
      "1": {"class_type": "A", "inputs": {"x": ["3", 0]}},
      "2": {"class_type": "B", "inputs": {"x": ["1", 0]}},
      "3": {"class_type": "C", "inputs": {"x": ["2", 0]}},
      "4": {"class_type": "SaveImage", "inputs": {"images": ["3", -1]}}
    }"#;
    comfyctl()
        .args(["verify", "-"])
        .write_stdin(w)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "error[bad_output_index]: node 4 (SaveImage) input 'images'",
        ));
    let w = r#"{
      "1": {"class_type": "A", "inputs": {"x": ["3", 0]}},
      "2": {"class_type": "B", "inputs": {"x": ["1", 0]}},
      "3": {"class_type": "C", "inputs": {"x": ["2", 0]}},
      "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}
    }"#;
    comfyctl()
        .args(["verify", "-"])
        .write_stdin(w)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error[cycle]"))
        .stdout(predicate::str::contains("1 -> 2 -> 3 -> 1"));
}

#[test]
fn warnings_fail_only_with_strict() {
    let w = r#"{"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}"#;
    comfyctl()
        .args(["verify", "-"])
        .write_stdin(w)
        .assert()
        .success()
        .stdout(predicate::str::contains("warning[no_output_node]"));
    comfyctl()
        .args(["verify", "--strict", "-"])
        .write_stdin(w)
        .assert()
        .code(1);
}

#[test]
fn deeply_nested_json_does_not_crash() {
    let deep = format!(
        "{{\"1\": {{\"class_type\": \"X\", \"inputs\": {{\"v\": {}{}}}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    comfyctl()
        .args(["verify", "-"])
        .write_stdin(deep)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("recursion limit"));
}

#[test]
fn huge_workflow_verifies() {
    // 20k nodes in one chain: no stack overflow in the graph walks.
    let mut w = serde_json::Map::new();
    w.insert(
        "0".into(),
        serde_json::json!({"class_type": "LoadImage", "inputs": {"image": "a.png"}}),
    );
    for i in 1..20_000 {
        w.insert(i.to_string(), serde_json::json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}}));
    }
    w.insert(
        "save".into(),
        serde_json::json!({"class_type": "SaveImage", "inputs": {"images": ["19999", 0]}}),
    );
    comfyctl()
        .args(["verify", "-"])
        .write_stdin(serde_json::to_string(&w).unwrap())
        .assert()
        .success()
        .stdout(predicate::str::contains("20001 node(s), 0 error(s)"));
}

#[test]
fn usage_errors_exit_2() {
    comfyctl().arg("verify").assert().code(2);
    comfyctl()
        .args(["verify", "--bogus", "x.json"])
        .assert()
        .code(2);
}
