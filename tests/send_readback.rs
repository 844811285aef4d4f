//! `comfyctl send` with a ComfyUI output as the workflow: the embedded prompt is what gets
//! queued, without ComfyUI's own `is_changed`. Against the in-process fake on 127.0.0.1.

#[path = "common/fake_comfy.rs"]
mod fake_comfy;

use assert_cmd::Command;
use fake_comfy::{FakeComfy, Scenario};
use serde_json::Value;
use std::time::Duration;

#[test]
fn send_queues_the_prompt_embedded_in_a_webp() {
    let fake = FakeComfy::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("comfyctl")
        .unwrap()
        .env_remove("COMFY_URL")
        .env_remove("COMFY_CLIENT_ID")
        .args(["send", "tests/fixtures/runpod_output.webp"])
        .args(["--image", "workflows/example.png"])
        .args(["--url", &fake.url, "--no-preflight", "-q", "-o"])
        .arg(dir.path())
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let log = fake.log();
    let body = log
        .iter()
        .find_map(|l| l.strip_prefix("prompt-body "))
        .expect("a prompt was queued");
    let body: Value = serde_json::from_str(body).unwrap();
    let prompt = body["prompt"].as_object().unwrap();
    let mut classes: Vec<&str> = prompt
        .values()
        .map(|n| n["class_type"].as_str().unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(
        classes,
        [
            "ImageBatch",
            "ImageInvert",
            "ImageScale",
            "LoadImage",
            "SaveAnimatedWEBP"
        ]
    );
    for node in prompt.values() {
        assert!(node.get("is_changed").is_none(), "{node}");
    }
}

#[test]
fn send_refuses_an_image_without_a_workflow_before_any_request() {
    Command::cargo_bin("comfyctl")
        .unwrap()
        .env_remove("COMFY_URL")
        .args(["send", "workflows/example.png", "--url", "http://127.0.0.1:9"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "workflows/example.png: no workflow embedded (saved with --disable-metadata, or not made by ComfyUI)",
        ));
}
