//! `comfyctl send` against an in-process fake ComfyUI (tests/common/fake_comfy.rs), running the
//! real binary. Everything talks to 127.0.0.1 only.

#[path = "common/fake_comfy.rs"]
mod fake_comfy;

use assert_cmd::Command;
use fake_comfy::{fake_png, fake_webp, FakeComfy, FakeFile, Scenario};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `comfyctl send workflows/cpu_smoke_webp.json --image workflows/example.png --url FAKE -o OUT`
fn send(fake: &FakeComfy, out: &Path) -> Command {
    send_to(&fake.url, out)
}

fn send_to(url: &str, out: &Path) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env_remove("COMFY_URL")
        .env_remove("COMFY_CLIENT_ID")
        .arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .arg("--url")
        .arg(url)
        .arg("-o")
        .arg(out)
        .arg("--no-preflight")
        .timeout(Duration::from_secs(60));
    c
}

/// The same as a std::process::Command, for tests that signal the child.
fn send_std(fake: &FakeComfy, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("comfyctl"));
    c.env_remove("COMFY_URL")
        .env_remove("COMFY_CLIENT_ID")
        .arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .arg("--url")
        .arg(&fake.url)
        .arg("-o")
        .arg(out)
        .arg("--no-preflight")
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn stdout_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The files in `dir`, without the manifest `send` writes (tests/manifest_replay.rs checks it).
fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !(n.starts_with("comfyctl-") && n.ends_with(".json")))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn sigint(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

#[test]
fn uploads_queues_follows_and_saves_with_json_summary() {
    let fake = FakeComfy::start(Scenario {
        binary_previews: true,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).arg("--json").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let v = stdout_json(&out);

    // One JSON object with the documented shape.
    assert_eq!(v["status"], "completed");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["command"], "send");
    assert_eq!(v["mode"], "prompt");
    assert_eq!(v["remote_status"], "success");
    assert_eq!(v["target"]["kind"], "comfyui");
    assert_eq!(v["client_id"], "runpod-worker-stable-client");
    assert_eq!(v["target"]["url"], fake.url);
    let id = v["job_id"].as_str().unwrap();
    assert_eq!(fake.history_ids(), vec![id.to_string()]);
    assert_eq!(v["nodes"]["executed"], 5);
    assert_eq!(v["nodes"]["cached"], 0);
    assert_eq!(v["all_cached"], false);
    assert_eq!(v["followed_by"], "websocket");
    for k in ["upload_s", "queue_wait_s", "run_s", "download_s", "total_s"] {
        assert!(v["timings"][k].is_number(), "timings.{k} missing: {v}");
    }
    let outputs = v["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["format"], "webp");
    assert_eq!(outputs[0]["bytes"], 3524);
    let path = PathBuf::from(outputs[0]["path"].as_str().unwrap());
    assert!(path.starts_with(dir.path()));
    assert_eq!(std::fs::read(&path).unwrap(), fake_webp(3524));
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        "comfyctl_smoke_00001_.webp"
    );

    // The upload used the content-addressed name and the workflow refers to what the server
    // returned; the same client ID went into /prompt and /ws; no Origin header.
    let uploaded = fake.uploaded_names();
    assert_eq!(uploaded.len(), 1);
    assert!(uploaded[0].starts_with("comfyctl-") && uploaded[0].ends_with(".png"));
    let log = fake.log();
    let body = log
        .iter()
        .find_map(|l| l.strip_prefix("prompt-body "))
        .unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["client_id"], "runpod-worker-stable-client");
    assert_eq!(body["prompt_id"], id);
    let load = body["prompt"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["class_type"] == "LoadImage")
        .unwrap();
    assert_eq!(load["inputs"]["image"], uploaded[0].as_str());
    assert!(!fake
        .state
        .saw_origin
        .load(std::sync::atomic::Ordering::SeqCst));

    // Human output on stderr: progress steps and the saved file.
    assert!(err.contains("step 4/4"), "{err}");
    assert!(err.contains("saved "), "{err}");
    assert!(
        err.contains("cache: 5 nodes ran, 0 came from ComfyUI's cache"),
        "{err}"
    );
}

#[test]
fn upload_conflict_uses_the_name_the_server_returns() {
    let fake = FakeComfy::start(Scenario::default());
    // Someone else's different file already has our content-addressed name.
    let bytes = std::fs::read(repo("workflows/example.png")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    send(&fake, dir.path()).assert().success();
    let name = fake.uploaded_names().pop().unwrap();
    fake.put_file("input", "", &name, fake_png(10));
    assert_ne!(fake_png(10), bytes);
    send(&fake, dir.path())
        .args(["--set", "5.filename_prefix=again"])
        .assert()
        .success();
    let renamed = name.replace(".png", " (1).png");
    let log = fake.log();
    let last = log
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("prompt-body "))
        .unwrap();
    assert!(last.contains(&renamed), "{last}");
}

#[test]
fn identical_resubmission_reports_cached_and_refetches() {
    let fake = FakeComfy::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    send(&fake, dir.path()).assert().success();
    let out = send(&fake, dir.path()).arg("--json").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("all 5 nodes cached; outputs are from an earlier run"),
        "{err}"
    );
    let v = stdout_json(&out);
    assert_eq!(v["all_cached"], true);
    assert_eq!(v["nodes"]["executed"], 0);
    assert_eq!(v["nodes"]["cached"], 5);
    // The earlier file again, saved next to the first copy without overwriting it.
    assert_eq!(
        files_in(dir.path()),
        ["comfyctl_smoke_00001_-1.webp", "comfyctl_smoke_00001_.webp"]
    );

    // When the server has deleted those files: a clear error, exit 1.
    fake.delete_outputs();
    let out = send(&fake, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("404") && err.contains("earlier run"), "{err}");
    assert!(err.contains("--random-seed"), "{err}");
}

#[test]
fn partly_cached_run_counts_ran_and_cached() {
    let fake = FakeComfy::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    send(&fake, dir.path())
        .arg("--no-normalize")
        .assert()
        .success();
    // Only the save node changes: 4 nodes come from the cache, 1 runs.
    let out = send(&fake, dir.path())
        .args([
            "--no-normalize",
            "--set",
            "5.filename_prefix=other",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["nodes"]["cached"], 4);
    assert_eq!(v["nodes"]["executed"], 1);
    assert_eq!(v["nodes"]["executed_ids"], json!(["5"]));
    assert!(stderr(&out).contains("cache: 1 node ran, 4 came from ComfyUI's cache"));
}

#[test]
fn execution_error_is_shown_and_exits_1() {
    let fake = FakeComfy::start(Scenario {
        fail_node: Some("3".into()),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path())
        .arg("--no-normalize")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("node 3 \"Invert Image\" (ImageInvert) failed on the server"),
        "{err}"
    );
    assert!(err.contains("PIL.UnidentifiedImageError"), "{err}");
    assert!(err.contains("cannot identify image file"), "{err}");
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn validation_400_is_shown_per_node_and_exits_2() {
    let fake = FakeComfy::start(Scenario {
        reject: Some(json!({
            "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
            "node_errors": {"image_scale_1": {"errors": [{"type": "required_input_missing", "message": "Required input is missing",
                "details": "width", "extra_info": {"input_name": "width"}}], "dependent_outputs": ["5"], "class_type": "ImageScale"}}
        })),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("Prompt outputs failed validation"), "{err}");
    // Normalized ID, the title, the class, the input, and the ID as written in the file.
    assert!(
        err.contains("node image_scale_1 \"Upscale Image\" (ImageScale) input 'width'"),
        "{err}"
    );
    assert!(err.contains("(node 2 in "), "{err}");
    assert!(err.contains("Required input is missing"), "{err}");
    assert!(!err.contains("node_errors"), "raw JSON dump: {err}");

    // --json: one error object on stdout with the diagnostics.
    let out = send(&fake, dir.path()).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = stdout_json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["kind"], "rejected");
    assert_eq!(v["error"]["diagnostics"][0]["input"], "width");
    assert_eq!(v["error"]["diagnostics"][0]["class_type"], "ImageScale");
}

#[test]
fn node_errors_on_200_are_reported_and_the_rest_runs() {
    let fake = FakeComfy::start(Scenario {
        accept_node_errors: Some(
            json!({"9": {"errors": [{"type": "value_bigger_than_max", "message": "Value 99999 bigger than max of 16384",
            "details": "width", "extra_info": {"input_name": "width"}}], "dependent_outputs": ["10"], "class_type": "ImageScale"}}),
        ),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).arg("--json").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rejected some output nodes"), "{err}");
    let v = stdout_json(&out);
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
    assert_eq!(v["diagnostics"][0]["input"], "width");
    assert!(v["warnings"][0].as_str().unwrap().contains("width"), "{v}");
    assert!(
        err.contains("Value 99999 bigger than max of 16384"),
        "{err}"
    );
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[test]
fn websocket_dropping_mid_run_falls_back_to_history() {
    let fake = FakeComfy::start(Scenario {
        drop_ws_mid_run: true,
        exec_time: Duration::from_millis(600),
        steps: 6,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).arg("--json").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("websocket closed"), "{err}");
    let v = stdout_json(&out);
    assert_eq!(v["followed_by"], "polling");
    assert_eq!(v["nodes"]["executed"], 5);
    assert_eq!(files_in(dir.path()), ["comfyctl_smoke_00001_.webp"]);
}

#[test]
fn second_websocket_with_same_client_id_steals_events_and_send_still_finishes() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_millis(800),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let child = send_std(&fake, dir.path(), &["--json"]).spawn().unwrap();
    assert!(fake.wait_for(20, |f| f.running_id().is_some()));
    // Another client connects with the same ID: comfyctl's socket goes deaf.
    let url = format!("ws://{}/ws?clientId=runpod-worker-stable-client", fake.addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let thief = rt.block_on(tokio_tungstenite::connect_async(url)).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(thief);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert_eq!(v["followed_by"], "polling");
    assert_eq!(files_in(dir.path()), ["comfyctl_smoke_00001_.webp"]);
}

#[test]
fn concurrent_sends_with_the_same_client_id_all_finish_with_their_own_outputs() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_millis(300),
        ..Scenario::default()
    });
    let base = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let dir = base.path().join(format!("run{i}"));
            let prefix = format!("5.filename_prefix=run{i}");
            let child = send_std(&fake, &dir, &["--no-normalize", "--set", &prefix, "--json"])
                .spawn()
                .unwrap();
            (i, dir, child)
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for (i, dir, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "run {i}: {}", stderr(&out));
        let v = stdout_json(&out);
        ids.insert(v["job_id"].as_str().unwrap().to_string());
        let files = files_in(&dir);
        assert_eq!(files.len(), 1, "run {i}: {files:?}");
        assert!(
            files[0].starts_with(&format!("run{i}_")),
            "run {i}: {files:?}"
        );
    }
    assert_eq!(ids.len(), 4);
}

#[test]
fn slow_view_is_streamed_to_disk() {
    let body = fake_webp(1_000_000);
    let fake = FakeComfy::start(Scenario {
        outputs: Some(vec![FakeFile::new("slow_00001_.webp", body.clone())]),
        view_chunk: 64 * 1024,
        view_delay: Duration::from_millis(40),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("slow_00001_.webp")).unwrap(),
        body
    );
}

#[test]
fn hostile_output_names_stay_inside_the_output_dir() {
    let fake = FakeComfy::start(Scenario {
        outputs: Some(vec![
            FakeFile::new("../../x.webp", fake_webp(100)),
            FakeFile::new("/etc/passwd", fake_png(100)),
            FakeFile {
                subfolder: "../..".into(),
                ..FakeFile::new("sub.webp", fake_webp(50))
            },
        ]),
        ..Scenario::default()
    });
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("b").join("out");
    let out = send(&fake, &dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&dir), ["passwd.png", "sub.webp", "x.webp"]);
    assert_eq!(files_in(&root.path().join("a")), ["b"]);
    assert_eq!(files_in(&root.path().join("a").join("b")), ["out"]);
}

#[test]
fn a_non_webp_body_named_webp_is_refused() {
    let fake = FakeComfy::start(Scenario {
        outputs: Some(vec![FakeFile::new(
            "clip_00001_.webp",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        )]),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("not WEBP"), "{err}");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

#[test]
fn ctrl_c_while_running_interrupts_only_our_prompt() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_secs(20),
        steps: 200,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let child = send_std(&fake, dir.path(), &[]).spawn().unwrap();
    assert!(fake.wait_for(20, |f| f.running_id().is_some()));
    let id = fake.running_id().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("interrupted prompt {id}")), "{err}");
    let log = fake.log();
    assert!(
        log.contains(&format!("interrupt-body {}", json!({"prompt_id": id}))),
        "{log:?}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn ctrl_c_while_pending_deletes_from_the_queue() {
    let fake = FakeComfy::start(Scenario {
        hold: true,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let child = send_std(&fake, dir.path(), &[]).spawn().unwrap();
    assert!(fake.wait_for(20, |f| !f.pending_ids().is_empty()));
    let id = fake.pending_ids()[0].clone();
    std::thread::sleep(Duration::from_millis(500));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("queued, position 1"), "{err}");
    assert!(err.contains("removed prompt"), "{err}");
    assert!(fake.pending_ids().is_empty());
    assert!(fake
        .log()
        .contains(&format!("queue-body {}", json!({"delete": [id]}))));
    assert!(!fake.log().iter().any(|l| l.starts_with("interrupt-body")));
}

#[test]
fn timeout_cancels_and_exits_4() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_secs(20),
        steps: 200,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path())
        .args(["--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--timeout 1s ran out"), "{err}");
    assert!(fake.log().iter().any(|l| l.starts_with("interrupt-body")));
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn base_path_and_basic_auth_in_the_url_are_never_printed() {
    let token = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("alice:s3cr3t-pw")
    };
    let fake = FakeComfy::start_at(
        Scenario {
            auth: Some(format!("Basic {token}")),
            ..Scenario::default()
        },
        "/comfy",
    );
    let dir = tempfile::tempdir().unwrap();
    let url = fake.url.replace("http://", "http://alice:s3cr3t-pw@") + "/";
    let out = send_to(&url, dir.path())
        .args(["--json", "-v"])
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("s3cr3t-pw") && !all.contains(&token), "{all}");
    let v = stdout_json(&out);
    assert_eq!(v["target"]["url"], fake.url);
    assert_eq!(files_in(dir.path()).len(), 1);
    // The websocket went through the base path (the fake serves nothing outside /comfy) with the
    // credentials too, and followed the whole run.
    assert_eq!(v["followed_by"], "websocket");
}

#[test]
fn bearer_header_and_wrong_credentials() {
    let fake = FakeComfy::start(Scenario {
        auth: Some("Bearer tok-123456".into()),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    send(&fake, dir.path())
        .args(["--header", "Authorization: Bearer tok-123456"])
        .assert()
        .success();
    let out = send(&fake, dir.path())
        .args(["--header", "Authorization: Bearer wrong-99999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-99999"), "{err}");
}

#[test]
fn unreachable_server_exits_5_with_a_hint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("comfyctl")
        .unwrap()
        .env_remove("COMFY_CLIENT_ID")
        .env("COMFY_URL", format!("http://127.0.0.1:{port}"))
        .arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .arg("-o")
        .arg(dir.path())
        .arg("--no-preflight")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("is ComfyUI running there?"), "{err}");
}

#[test]
fn loaders_rerunning_on_the_default_cache_get_a_server_side_hint() {
    let fake = FakeComfy::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let run = |fake: &FakeComfy| {
        Command::cargo_bin("comfyctl")
            .unwrap()
            .env_remove("COMFY_CLIENT_ID")
            .arg("send")
            .arg(repo("workflows/sdxl_t2i.json"))
            .arg("--url")
            .arg(&fake.url)
            .arg("-o")
            .arg(dir.path())
            .arg("--no-preflight")
            .arg("--random-seed")
            .output()
            .unwrap()
    };
    let out = run(&fake);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("loader nodes ran ("), "{err}");
    assert!(err.contains("--cache-lru"), "{err}");

    fake.set(|s| s.argv.extend(["--cache-lru".to_string(), "10".to_string()]));
    let out = run(&fake);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("loader nodes ran ("));
}

#[test]
fn temp_previews_are_skipped_unless_asked() {
    let fake = FakeComfy::start(Scenario {
        outputs: Some(vec![
            FakeFile::new("keep_00001_.webp", fake_webp(64)),
            FakeFile {
                kind: "temp".into(),
                ..FakeFile::new("ComfyUI_temp_x_00001_.png", fake_png(64))
            },
            FakeFile {
                key: "gifs".into(),
                ..FakeFile::new("clip_00001_.mp4", {
                    let mut v = b"\0\0\0\x18ftypmp42\0\0\0\0".to_vec();
                    v.resize(64, 0);
                    v
                })
            },
        ]),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    send(&fake, dir.path()).assert().success();
    assert_eq!(
        files_in(dir.path()),
        ["clip_00001_.mp4", "keep_00001_.webp"]
    );
    let dir2 = tempfile::tempdir().unwrap();
    send(&fake, dir2.path())
        .arg("--include-temp")
        .assert()
        .success();
    assert_eq!(files_in(dir2.path()).len(), 3);
}

/// Sends the model-free workflow to a real ComfyUI when COMFY_TEST_URL points at one.
#[test]
fn real_comfyui_when_available() {
    let Ok(url) = std::env::var("COMFY_TEST_URL") else {
        eprintln!("skipped: COMFY_TEST_URL is not set (e.g. COMFY_TEST_URL=http://127.0.0.1:8188)");
        return;
    };
    let reachable = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.socket_addrs(|| Some(8188)).ok())
        .and_then(|a| a.first().copied())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if !reachable {
        eprintln!("skipped: nothing answers at COMFY_TEST_URL={url}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("comfyctl")
        .unwrap()
        .arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .args(["--url", &url, "--json", "--set"])
        .arg(format!(
            "5.filename_prefix=comfyctl_test_{}",
            std::process::id()
        ))
        .arg("-o")
        .arg(dir.path())
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    let saved = v["outputs"].as_array().unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["format"], "webp");
    let bytes = std::fs::read(saved[0]["path"].as_str().unwrap()).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
}

#[test]
fn sigterm_cancels_like_ctrl_c() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_secs(20),
        steps: 200,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let child = send_std(&fake, dir.path(), &["--json"]).spawn().unwrap();
    assert!(fake.wait_for(20, |f| f.running_id().is_some()));
    let id = fake.running_id().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let ok = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    // --json still gives one parseable object, now an error.
    let v = stdout_json(&out);
    assert_eq!(v["error"]["kind"], "interrupted");
    assert!(fake
        .log()
        .contains(&format!("interrupt-body {}", json!({"prompt_id": id}))));
}

/// Preflight with a saved schema: the image comfyctl uploads is not flagged (its name is new to
/// the server), and the run goes through.
#[test]
fn preflight_passes_a_valid_workflow_with_an_uploaded_image() {
    let fake = FakeComfy::start(Scenario::default());
    let out = tempfile::tempdir().unwrap();
    send(&fake, out.path())
        .arg("--preflight")
        .arg("--object-info")
        .arg(repo("tests/fixtures/object_info_smoke.json"))
        .assert()
        .success();
    assert_eq!(fake.history_ids().len(), 1);
}

/// Preflight catches a typo before anything is queued, names the node and input, and suggests
/// the server's closest value.
#[test]
fn preflight_rejects_a_bad_value_before_queueing() {
    let fake = FakeComfy::start(Scenario::default());
    let out = tempfile::tempdir().unwrap();
    let o = send(&fake, out.path())
        .args([
            "--set",
            "2.upscale_method=bicubick",
            "--preflight",
            "--object-info",
        ])
        .arg(repo("tests/fixtures/object_info_smoke.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("preflight"), "{err}");
    assert!(
        err.contains("node image_scale_1 \"Upscale Image\" (ImageScale) input 'upscale_method'"),
        "{err}"
    );
    assert!(err.contains("closest the server has: 'bicubic'"), "{err}");
    assert!(fake.history_ids().is_empty(), "nothing was queued");
    assert!(fake.uploaded_names().is_empty(), "nothing was uploaded");
}

/// The default send costs no `/object_info` (ComfyUI builds it afresh on every call and validates
/// at `/prompt` anyway); `--preflight` fetches it before queueing.
#[test]
fn the_happy_path_fetches_no_object_info_and_preflight_does() {
    let info = std::fs::read_to_string(repo("tests/fixtures/object_info_smoke.json")).unwrap();
    let fake = FakeComfy::start(Scenario {
        object_info: Some(info),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env_remove("COMFY_URL")
        .env("COMFYCTL_CACHE_DIR", dir.path().join("cache"))
        .arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .args(["--url", &fake.url, "--json", "-o"])
        .arg(dir.path().join("out"));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert!(v["timings"]["preflight_s"].is_null(), "{v}");
    // The full schema is never fetched (the manifest asks `/object_info/{class}` after the job).
    let gets = |log: &[String]| log.iter().filter(|l| l.ends_with("/object_info")).count();
    assert_eq!(gets(&fake.log()), 0, "{:?}", fake.log());

    let out = send(&fake, &dir.path().join("out2"))
        .args(["--preflight", "--json", "--set", "2.width=100"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    assert!(v["timings"]["preflight_s"].is_number(), "{v}");
    let log = fake.log();
    let info_at = log.iter().position(|l| l.contains("/object_info")).unwrap();
    let prompt_at = log
        .iter()
        .rposition(|l| l.contains("POST /prompt"))
        .unwrap();
    assert!(info_at < prompt_at, "{log:?}");
}

/// A rejection at `/prompt` fetches the schema only then, and adds what it knows: the closest
/// allowed value, named on the node the user wrote.
#[test]
fn a_rejected_prompt_is_enriched_from_the_live_schema() {
    let info = std::fs::read_to_string(repo("tests/fixtures/object_info_smoke.json")).unwrap();
    let fake = FakeComfy::start(Scenario {
        object_info: Some(info),
        reject: Some(json!({
            "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
            "node_errors": {"image_scale_1": {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                "details": "upscale_method: 'bicubick' not in [...]", "extra_info": {"input_name": "upscale_method"}}],
                "dependent_outputs": ["save_webp_1"], "class_type": "ImageScale"}}
        })),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path())
        .args(["--set", "2.upscale_method=bicubick"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("Prompt outputs failed validation"), "{err}");
    assert!(err.contains("Value not in list"), "{err}");
    assert!(err.contains("closest the server has: 'bicubic'"), "{err}");
    let log = fake.log();
    let prompt_at = log.iter().position(|l| l.contains("POST /prompt")).unwrap();
    let info_at = log.iter().position(|l| l.contains("/object_info")).unwrap();
    assert!(
        prompt_at < info_at,
        "the schema is fetched after the rejection: {log:?}"
    );
}

/// A server that echoes our credentials and terminal escapes in its 400: neither reaches the
/// terminal nor `--json`.
#[test]
fn a_rejection_echoing_credentials_and_escapes_is_scrubbed() {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode("alice:S3cretPw9");
    let echo = format!("echo: Basic {token} tok_ABCDEF123456 \u{1b}]0;pwned\u{7}\u{1b}[2J");
    let fake = FakeComfy::start(Scenario {
        auth: Some(format!("Basic {token}")),
        reject: Some(json!({
            "error": {"type": "x", "message": echo, "details": echo, "extra_info": {}},
            "node_errors": {"image_scale_1": {"errors": [{"type": "value_not_in_list", "message": echo,
                "details": echo, "extra_info": {"input_name": "width"}}], "dependent_outputs": [], "class_type": "ImageScale"}}
        })),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let url = fake.url.replace("http://", "http://alice:S3cretPw9@");
    let out = send_to(&url, dir.path())
        .args(["--header", "X-Token: tok_ABCDEF123456", "--json", "-v"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for secret in [token.as_str(), "tok_ABCDEF123456", "S3cretPw9"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert!(
        !stderr(&out).contains('\u{1b}') && !stderr(&out).contains('\u{7}'),
        "{all}"
    );
    assert!(stderr(&out).contains("(redacted)"), "{all}");
}

/// Two outputs of one prompt with the same name (SaveImage nodes with prefixes `a/img` and
/// `b/img`) are both kept, with --overwrite too.
#[test]
fn two_outputs_with_one_name_are_both_kept_even_with_overwrite() {
    let fake = FakeComfy::start(Scenario {
        outputs: Some(vec![
            FakeFile::new("img_00001_.png", fake_png(4000)),
            FakeFile {
                subfolder: "b".into(),
                ..FakeFile::new("img_00001_.png", fake_png(73))
            },
        ]),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = send(&fake, dir.path())
        .args(["--overwrite", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&out);
    let paths: Vec<&str> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2);
    assert_ne!(paths[0], paths[1]);
    assert_eq!(files_in(dir.path()).len(), 2);
}
