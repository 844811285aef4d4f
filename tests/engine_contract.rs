//! The job engine's promises that hold whatever the target: one `--json` schema for ComfyUI and
//! RunPod (the same keys on success, the same error object on failure), a flag always beating
//! the environment, two targets being an error, and flags of the other target never silently
//! dropped. Every test runs the real binary against the in-process fakes.

#[path = "common/fake_comfy.rs"]
mod fake_comfy;
#[path = "common/fake_runpod.rs"]
mod fake_runpod;

use assert_cmd::Command;
use base64::Engine as _;
use fake_comfy::{FakeComfy, Scenario};
use fake_runpod::{FakeRunpod, Outcome, Script};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `comfyctl send` of the smoke workflow, with no target variables from the caller's shell.
fn send(out: &Path) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_URL")
        .env_remove("COMFY_URL")
        .env_remove("COMFY_CLIENT_ID")
        .env("COMFYCTL_RUNPOD_RETRY_WINDOW", "1s")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
            "--no-preflight",
            "-o",
        ])
        .arg(out);
    c
}

fn runpod_ok() -> Script {
    let webp = std::fs::read(root().join("tests/fixtures/runpod_output.webp")).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(webp);
    Script {
        outcome: Outcome::Completed(Arc::new(
            json!({"images": [{"filename": "ComfyUI_00001_.webp", "type": "base64", "data": data}]})
                .to_string(),
        )),
        ..Script::default()
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON object on stdout ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A TCP port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn both_targets_print_the_same_json_schema_on_success() {
    let comfy = FakeComfy::start(Scenario::default());
    let runpod = FakeRunpod::start(runpod_ok());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = send(d1.path())
        .args(["--url", &comfy.url, "--json"])
        .output()
        .unwrap();
    let b = send(d2.path())
        .args(["--runpod-url", &runpod.url(), "--json"])
        .output()
        .unwrap();
    assert!(a.status.success() && b.status.success());
    let (a, b) = (json_of(&a), json_of(&b));
    assert_eq!(keys(&a), keys(&b), "top-level keys differ:\n{a}\n{b}");
    for k in ["timings", "target"] {
        assert_eq!(keys(&a[k]), keys(&b[k]), "{k} keys differ:\n{a}\n{b}");
    }
    assert_eq!(keys(&a["outputs"][0]), keys(&b["outputs"][0]));
    for v in [&a, &b] {
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["command"], "send");
        assert_eq!(v["status"], "completed");
        assert!(v["error"].is_null());
        assert!(v["job_id"].is_string());
        assert!(v["timings"]["total_s"].is_number());
        assert!(v["timings"]["submit_s"].is_number());
    }
    assert_eq!(a["target"]["kind"], "comfyui");
    assert_eq!(b["target"]["kind"], "runpod");
    // What only one target knows is null on the other, never missing.
    assert!(a["nodes"].is_object() && b["nodes"].is_null());
    assert!(a["worker_id"].is_null());
    // The README documents every key.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for k in keys(&a).iter().chain(keys(&a["timings"]).iter()) {
        assert!(
            readme.contains(&format!("`{k}`")),
            "README does not document `{k}`"
        );
    }
}

#[test]
fn both_targets_print_the_same_error_object_on_failure() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = send(d1.path())
        .args([
            "--url",
            &format!("http://127.0.0.1:{}", dead_port()),
            "--json",
        ])
        .output()
        .unwrap();
    let b = send(d2.path())
        .args([
            "--runpod-url",
            &format!("http://127.0.0.1:{}", dead_port()),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(a.status.code(), Some(5));
    assert_eq!(b.status.code(), Some(5));
    let (a, b) = (json_of(&a), json_of(&b));
    assert_eq!(keys(&a), keys(&b), "{a}\n{b}");
    assert_eq!(keys(&a["error"]), keys(&b["error"]));
    for v in [&a, &b] {
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"]["kind"], "server");
        assert_eq!(v["error"]["exit_code"], 5);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot reach"),
            "{v}"
        );
    }
    // Nothing was created for a run that failed before its first output.
    assert_eq!(std::fs::read_dir(d1.path()).unwrap().count(), 0);
}

#[test]
fn a_flag_beats_the_environment_and_two_targets_are_an_error() {
    let comfy = FakeComfy::start(Scenario::default());
    let runpod = FakeRunpod::start(runpod_ok());
    let d = tempfile::tempdir().unwrap();
    // RUNPOD_URL in the environment, --url on the command line: the job goes to ComfyUI.
    let out = send(d.path())
        .env("RUNPOD_URL", runpod.url())
        .args(["--url", &comfy.url, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_of(&out)["target"]["kind"], "comfyui");
    assert_eq!(runpod.count("POST", "/run"), 0);
    assert_eq!(comfy.history_ids().len(), 1);

    // Two explicit targets: a usage error, nothing sent.
    let out = send(d.path())
        .args(["--url", &comfy.url, "--runpod-url", &runpod.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give one target"));
    // Both kinds only in the environment: ambiguous, said so.
    let out = send(d.path())
        .env("COMFY_URL", &comfy.url)
        .env("RUNPOD_URL", runpod.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("both set"));
    assert_eq!(runpod.count("POST", "/run"), 0);
    assert_eq!(comfy.history_ids().len(), 1);
}

#[test]
fn flags_of_the_other_target_are_errors_not_silently_dropped() {
    let comfy = FakeComfy::start(Scenario::default());
    let runpod = FakeRunpod::start(runpod_ok());
    let d = tempfile::tempdir().unwrap();
    for flag in [
        vec!["--sync"],
        vec!["--webhook", "http://127.0.0.1:9/h"],
        vec!["--ttl", "1h"],
    ] {
        let out = send(d.path())
            .args(["--url", &comfy.url])
            .args(&flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("applies to RunPod only"), "{err}");
    }
    let out = send(d.path())
        .args([
            "--runpod-url",
            &runpod.url(),
            "--header",
            "X-Api-Key: abcd1234",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("applies to a ComfyUI server only") && !err.contains("abcd1234"));
    assert_eq!(comfy.history_ids().len(), 0);
    assert_eq!(runpod.count("POST", "/run"), 0);
}

#[test]
fn a_plus_in_a_url_password_arrives_intact_and_is_never_printed() {
    let token = base64::engine::general_purpose::STANDARD.encode("me:pa+ss-w0rd");
    let comfy = FakeComfy::start(Scenario {
        auth: Some(format!("Basic {token}")),
        ..Scenario::default()
    });
    let d = tempfile::tempdir().unwrap();
    let url = comfy.url.replace("http://", "http://me:pa+ss-w0rd@");
    let out = send(d.path())
        .args(["--url", &url, "--json", "-vv"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("pa+ss") && !all.contains(&token), "{all}");
    assert_eq!(comfy.history_ids().len(), 1);
}

#[test]
fn status_attaches_to_a_comfyui_prompt_and_saves_its_outputs() {
    let comfy = FakeComfy::start(Scenario::default());
    let d = tempfile::tempdir().unwrap();
    let out = send(d.path())
        .args(["--url", &comfy.url, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = json_of(&out)["job_id"].as_str().unwrap().to_string();
    // The command `send` would print to fetch outputs later works as written.
    let later = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("comfyctl")
        .unwrap()
        .env_remove("COMFY_URL")
        .args(["status", &id, "--url", &comfy.url, "--save", "--json", "-o"])
        .arg(later.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["command"], "status");
    assert_eq!(v["job_id"], id.as_str());
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(later.path()).unwrap().count(), 1);
    // An unknown prompt is a clear failure.
    let out = Command::cargo_bin("comfyctl")
        .unwrap()
        .args(["status", "no-such-prompt", "--url", &comfy.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no prompt no-such-prompt"));
}
