//! `comfyctl send --runpod-url`, `status` and `cancel` against an in-process fake RunPod endpoint
//! with injected faults. Every test runs the real binary.

#[path = "common/fake_runpod.rs"]
mod fake_runpod;

use assert_cmd::Command;
use base64::Engine as _;
use fake_runpod::{serve_files, FakeRunpod, Fault, Outcome, Script};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "rpa_TESTKEY_1234567890";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn webp() -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/runpod_output.webp")).unwrap()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `output` made of `images` entries `(filename, type, data)`.
fn images(entries: &[(&str, &str, String)]) -> Outcome {
    let imgs: Vec<Value> = entries
        .iter()
        .map(|(f, t, d)| json!({"filename": f, "type": t, "data": d}))
        .collect();
    raw(json!({ "images": imgs }))
}

fn raw(v: Value) -> Outcome {
    Outcome::Completed(Arc::new(v.to_string()))
}

fn ok_script() -> Script {
    Script {
        outcome: images(&[("ComfyUI_00001_.webp", "base64", b64(&webp()))]),
        ..Script::default()
    }
}

/// `comfyctl send` of the smoke workflow with one image to the fake.
fn send(fake: &FakeRunpod, out: &Path) -> Command {
    send_t(fake, out, "30s")
}

fn send_t(fake: &FakeRunpod, out: &Path, timeout: &str) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_URL")
        .env_remove("COMFY_URL")
        .timeout(Duration::from_secs(60))
        .args(["send", "workflows/cpu_smoke_webp.json"])
        .args(["--image", "workflows/example.png"])
        .args(["--runpod-url", &fake.url()])
        .arg("-o")
        .arg(out)
        .args(["--poll-interval", "50ms", "--timeout", timeout]);
    c
}

fn other_cmd(fake: &FakeRunpod, args: &[&str]) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env_remove("RUNPOD_API_KEY")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_URL")
        .timeout(Duration::from_secs(60))
        .args(args)
        .args(["--runpod-url", &fake.url()]);
    c
}

/// The files in `dir`, without the manifest `send` writes (tests/manifest_replay.rs checks it).
fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !(n.starts_with("comfyctl-") && n.ends_with(".json")))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Run {
    let o = c.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn completes_saves_and_reports_json_without_leaking_the_key() {
    let fake = FakeRunpod::start(Script {
        api_key: Some(KEY.into()),
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.env("RUNPOD_API_KEY", KEY).args([
        "--json",
        "-vv",
        "--execution-timeout",
        "10m",
        "--ttl",
        "1h",
        "--webhook",
        "http://127.0.0.1:9/hook",
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains(KEY) && !r.stdout.contains(KEY));
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON object on stdout");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["remote_status"], "COMPLETED");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["target"]["kind"], "runpod");
    assert_eq!(v["target"]["url"], fake.url());
    assert_eq!(v["mode"], "run");
    assert_eq!(v["timings"]["queue_wait_s"], 0.1);
    assert_eq!(v["timings"]["run_s"], 0.2);
    let id = v["job_id"].as_str().unwrap();
    assert!(r.stderr.contains(&format!("job ID: {id}")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("comfyctl status {id}")));
    let outs = v["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0]["format"], "webp");
    let path = PathBuf::from(outs[0]["path"].as_str().unwrap());
    assert_eq!(path.file_name().unwrap(), "ComfyUI_00001_.webp");
    assert_eq!(std::fs::read(&path).unwrap(), webp());
    assert!(v["timings"]["total_s"].as_f64().is_some());

    // The request: workflow + inline image under its content name, client ID, policy, webhook.
    assert_eq!(fake.count("POST", "/run"), 1);
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/run")
        .unwrap();
    assert_eq!(req.auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    let body = req.json();
    let input = &body["input"];
    let img = &input["images"][0];
    let name = img["name"].as_str().unwrap();
    assert!(
        name.starts_with("comfyctl-") && name.ends_with(".png"),
        "{name}"
    );
    let sent = base64::engine::general_purpose::STANDARD
        .decode(img["image"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        sent,
        std::fs::read(root().join("workflows/example.png")).unwrap()
    );
    let loaders: Vec<&Value> = input["workflow"]
        .as_object()
        .unwrap()
        .values()
        .filter(|n| n["class_type"] == "LoadImage")
        .collect();
    assert_eq!(loaders.len(), 1);
    assert_eq!(loaders[0]["inputs"]["image"], name);
    assert_eq!(input["client_id"], "runpod-worker-stable-client");
    assert_eq!(
        body["policy"],
        json!({"executionTimeout": 600000, "ttl": 3600000})
    );
    assert_eq!(body["webhook"], "http://127.0.0.1:9/hook");
}

#[test]
fn status_polls_survive_429_500s_and_a_reset_connection() {
    let fake = FakeRunpod::start(Script {
        status_faults: vec![
            Fault::Http(429, Some("1")),
            Fault::Http(500, None),
            Fault::Http(502, None),
            Fault::Reset,
            Fault::Http(503, None),
        ],
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        fake.count("POST", "/run"),
        1,
        "the job must not be submitted twice"
    );
    assert!(fake.count("GET", "/status/") >= 6);
    assert_eq!(files_in(d.path()), vec!["ComfyUI_00001_.webp"]);
}

#[test]
fn run_is_retried_after_429_but_never_after_a_500() {
    let fake = FakeRunpod::start(Script {
        submit_faults: vec![Fault::Http(429, Some("0.2"))],
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/run"), 2);

    let fake = FakeRunpod::start(Script {
        submit_faults: vec![Fault::Http(500, None)],
        ..ok_script()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(
        fake.count("POST", "/run"),
        1,
        "a 500 on /run may have created a job"
    );
    assert!(r.stderr.contains("HTTP 500"), "{}", r.stderr);

    let fake = FakeRunpod::start(Script {
        submit_faults: vec![Fault::Reset],
        ..ok_script()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/run"), 1);
    assert!(r.stderr.contains("not sent again"), "{}", r.stderr);
}

#[test]
fn status_failures_give_up_after_the_retry_window_with_the_job_id() {
    let fake = FakeRunpod::start(Script {
        status_faults: vec![Fault::Http(500, None); 200],
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.env("COMFYCTL_RUNPOD_RETRY_WINDOW", "1s").arg("--json");
    let r = run(c);
    assert_eq!(r.code, 5, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["exit_code"], 5);
    assert!(v["job_id"].as_str().unwrap().starts_with("fake-"));
    assert!(r.stderr.contains("kept failing"), "{}", r.stderr);
    let id = v["job_id"].as_str().unwrap();
    // The printed command works when pasted: it names the endpoint the run used.
    assert!(
        r.stderr.contains(&format!(
            "resume with: comfyctl status {id} --runpod-url {} --wait",
            fake.url()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn a_job_stuck_in_queue_is_cancelled_on_timeout() {
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::StuckInQueue,
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send_t(&fake, d.path(), "1s"));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/cancel/"), 1);
    assert!(r.stderr.contains("was cancelled"), "{}", r.stderr);
    assert!(files_in(d.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_job_and_exits_130() {
    use std::io::{BufRead, BufReader};
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::StuckInQueue,
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("comfyctl");
    let mut child = std::process::Command::new(bin)
        .current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
        ])
        .args(["--runpod-url", &fake.url(), "--timeout", "30s"])
        .arg("-o")
        .arg(d.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let l = lines.next().expect("job ID line").unwrap();
        if l.contains("job ID:") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    assert_eq!(fake.count("POST", "/cancel/"), 1);
    assert!(rest.join("\n").contains("Ctrl-C"), "{rest:?}");
}

#[test]
fn failed_jobs_show_the_error_readably() {
    let inner = json!({
        "error_type": "<class 'AttributeError'>",
        "error_message": "'str' object has no attribute 'keys'",
        "error_traceback": "Traceback (most recent call last):\n  File \"/handler.py\", line 40, in handler\n    for k in wf.keys():\nAttributeError: 'str' object has no attribute 'keys'\n",
        "hostname": "abc", "worker_id": "w-77", "runpod_version": "1.12.0"
    });
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::Failed(Value::String(inner.to_string())),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "FAILED: 'str' object has no attribute 'keys' (AttributeError) [worker w-77]"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("for k in wf.keys():"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("\\n"),
        "escaped newlines leaked: {}",
        r.stderr
    );

    // A validation failure is the workflow's fault: exit 2.
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::Failed(json!("Workflow validation failed:\n• Node imagescale_1 (errors): [{'type': 'value_bigger_than_max'}]")),
        ..Script::default()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("value_bigger_than_max"), "{}", r.stderr);
    assert!(files_in(d.path()).is_empty());
}

#[test]
fn timed_out_cancelled_and_outputless_jobs_fail() {
    let d = tempfile::tempdir().unwrap();
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::TimedOut,
        ..Script::default()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("TIMED_OUT") && r.stderr.contains("--execution-timeout"),
        "{}",
        r.stderr
    );

    let fake = FakeRunpod::start(Script {
        outcome: Outcome::CompletedNoOutput,
        ..Script::default()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no output") && r.stderr.contains("BUCKET_ENDPOINT_URL"),
        "{}",
        r.stderr
    );

    let fake = FakeRunpod::start(Script {
        expire_when_final: true,
        ..ok_script()
    });
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is gone (HTTP 404") && r.stderr.contains("TTL"),
        "{}",
        r.stderr
    );
    assert!(files_in(d.path()).is_empty());
}

#[test]
fn no_files_fails_unless_allow_empty() {
    let fake = FakeRunpod::start(Script {
        outcome: raw(json!({"status": "success_no_images", "images": []})),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("success_no_images") && r.stderr.contains("--allow-empty"),
        "{}",
        r.stderr
    );
    let mut c = send(&fake, d.path());
    c.args(["--allow-empty", "--json"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outputs"], json!([]));
}

#[test]
fn warnings_legacy_message_data_uri_and_mp4_named_as_image() {
    let mut mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41".to_vec();
    mp4.extend(std::iter::repeat_n(7u8, 5000));
    let fake = FakeRunpod::start(Script {
        outcome: raw(json!({
            "images": [
                {"filename": "ComfyUI_00001_.png", "type": "base64", "data": b64(&mp4)},
                {"filename": "with_prefix.webp", "type": "base64", "data": format!("data:image/webp;base64,{}", b64(&webp()))},
            ],
            "errors": ["Node 9: unhandled output key 'gifs'"],
        })),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.arg("--json");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: worker: Node 9: unhandled output key 'gifs'"),
        "{}",
        r.stderr
    );
    assert_eq!(
        files_in(d.path()),
        vec!["ComfyUI_00001_.mp4", "with_prefix.webp"]
    );
    assert_eq!(
        std::fs::read(d.path().join("ComfyUI_00001_.mp4")).unwrap(),
        mp4
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["warnings"][0], "Node 9: unhandled output key 'gifs'");

    let fake = FakeRunpod::start(Script {
        outcome: raw(json!({ "message": b64(&webp()) })),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(files_in(d.path()), vec!["output.webp"]);
}

#[test]
fn truncated_or_invalid_base64_saves_nothing_partial() {
    let w = b64(&webp());
    let cut_at_group = w[..w.len() / 2 / 4 * 4].to_string();
    for (data, expect) in [
        (format!("{}*{}", &w[..100], &w[101..]), "invalid base64"),
        (w[..w.len() - 10].to_string(), "truncated base64"),
        (w[..101].to_string(), "truncated base64"),
        (cut_at_group, "RIFF header promises"),
    ] {
        let fake = FakeRunpod::start(Script {
            outcome: images(&[("bad.webp", "base64", data)]),
            ..Script::default()
        });
        let d = tempfile::tempdir().unwrap();
        let r = run(send(&fake, d.path()));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains(expect), "want {expect}: {}", r.stderr);
        assert!(r.stderr.contains("output 'bad.webp'"), "{}", r.stderr);
        assert!(files_in(d.path()).is_empty(), "{:?}", files_in(d.path()));
    }
}

#[test]
fn hostile_filenames_stay_inside_the_output_directory() {
    let w = b64(&webp());
    let fake = FakeRunpod::start(Script {
        outcome: images(&[
            ("../../evil.webp", "base64", w.clone()),
            ("/etc/passwd", "base64", w.clone()),
            ("..", "base64", w.clone()),
            ("sub\\..\\win.webp", "base64", w.clone()),
            ("new\nline.webp", "base64", w),
        ]),
        ..Script::default()
    });
    let top = tempfile::tempdir().unwrap();
    let out = top.path().join("a/b");
    let r = run(send(&fake, &out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        files_in(&out),
        vec![
            "evil.webp",
            "new_line.webp",
            "output.webp",
            "passwd.webp",
            "win.webp"
        ]
    );
    assert_eq!(files_in(top.path()), vec!["a"]);
    assert_eq!(files_in(&top.path().join("a")), vec!["b"]);
}

#[test]
fn s3_url_outputs_are_downloaded_without_the_api_key() {
    let files = serve_files(vec![("/08-26/job/3fa2c1d0.webp", webp())]);
    let fake = FakeRunpod::start(Script {
        api_key: Some(KEY.into()),
        outcome: images(&[(
            "ComfyUI_00007_.webp",
            "s3_url",
            format!("{files}/08-26/job/3fa2c1d0.webp?X-Amz-Signature=abc"),
        )]),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.env("RUNPOD_API_KEY", KEY);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(d.path().join("ComfyUI_00007_.webp")).unwrap(),
        webp()
    );

    let fake = FakeRunpod::start(Script {
        outcome: images(&[(
            "gone.webp",
            "s3_url",
            format!("{files}/08-19/old/expired.webp"),
        )]),
        ..Script::default()
    });
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, d.path()));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("HTTP 403") && r.stderr.contains("7 days"),
        "{}",
        r.stderr
    );
    assert!(files_in(d.path()).is_empty());
}

#[test]
fn rejected_key_exits_3_and_is_never_echoed() {
    let fake = FakeRunpod::start(Script {
        api_key: Some(KEY.into()),
        echo_auth_on_401: true,
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let wrong = "rpa_WRONG_SECRET_9999";
    let mut c = send(&fake, d.path());
    c.env("RUNPOD_API_KEY", wrong).args(["-vv", "--json"]);
    let r = run(c);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("API key rejected"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong));

    // The key can come from a file too.
    let kf = d.path().join("key");
    std::fs::write(&kf, format!("{KEY}\n")).unwrap();
    let mut c = send(&fake, &d.path().join("out"));
    c.arg("--api-key-file").arg(&kf);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn oversized_requests_are_refused_before_sending() {
    let fake = FakeRunpod::start(ok_script());
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(8_000_000, 0x5a);
    std::fs::write(&big, &bytes).unwrap();
    let mut c2 = Command::cargo_bin("comfyctl").unwrap();
    c2.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .args(["send", "workflows/cpu_smoke_webp.json", "--image"])
        .arg(&big)
        .args(["--runpod-url", &fake.url()])
        .arg("-o")
        .arg(d.path().join("out"));
    let r = run(c2);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("10.7 MB") && r.stderr.contains("at most 10.0 MB"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--sync"), "{}", r.stderr);
    assert!(fake.requests().is_empty(), "nothing may be sent");
}

#[test]
fn sync_mode_waits_and_falls_back_to_polling() {
    let fake = FakeRunpod::start(ok_script());
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.args(["--sync", "--json"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/runsync"), 1);
    assert_eq!(fake.count("GET", "/status/"), 0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["mode"], "runsync");

    let fake = FakeRunpod::start(Script {
        runsync_returns_early: true,
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, d.path());
    c.arg("--sync");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/runsync"), 1);
    assert!(fake.count("GET", "/status/") >= 1);
    assert_eq!(files_in(d.path()), vec!["ComfyUI_00001_.webp"]);
}

#[test]
fn unknown_endpoint_and_missing_target() {
    let fake = FakeRunpod::start(ok_script());
    let d = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
        ])
        .args(["--runpod-url", &format!("{}/v2/nope", fake.url())])
        .arg("-o")
        .arg(d.path());
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no such endpoint"), "{}", r.stderr);

    // Nothing listening: retried briefly, then exit 5.
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .env("COMFYCTL_RUNPOD_RETRY_WINDOW", "1s")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
        ])
        .args(["--runpod-url", "http://127.0.0.1:1"])
        .arg("-o")
        .arg(d.path());
    let r = run(c);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot reach http://127.0.0.1:1/run"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("retrying for up to 1 s (Ctrl-C to stop)"),
        "the retries are visible without -v: {}",
        r.stderr
    );

    // --endpoint without a key: refused locally, nothing sent anywhere.
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.current_dir(root())
        .env_remove("RUNPOD_API_KEY")
        .env_remove("RUNPOD_URL")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
        ])
        .args(["--endpoint", "abc123"]);
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("RUNPOD_API_KEY") && r.stderr.contains("--api-key-file"),
        "{}",
        r.stderr
    );
}

#[test]
fn status_and_cancel_subcommands() {
    let fake = FakeRunpod::start(ok_script());
    fake.add_job("job-a");
    // Right after submission it is queued: status says so and exits 0.
    let r = run(other_cmd(&fake, &["status", "job-a", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["remote_status"], "IN_QUEUE");
    assert_eq!(v["status"], "queued");

    // --save before it finishes: nothing to save yet.
    let d = tempfile::tempdir().unwrap();
    let mut c = other_cmd(&fake, &["status", "job-a", "--save"]);
    c.arg("-o").arg(d.path());
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--wait"), "{}", r.stderr);

    // --wait polls until done and saves the outputs.
    let mut c = other_cmd(&fake, &["status", "job-a", "--wait", "--json"]);
    c.arg("-o").arg(d.path());
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outputs"][0]["format"], "webp");
    assert_eq!(files_in(d.path()), vec!["ComfyUI_00001_.webp"]);

    // Without --save a finished job lists what it has.
    let r = run(other_cmd(&fake, &["status", "job-a", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["announced"], json!(["ComfyUI_00001_.webp"]));

    // Unknown job.
    let r = run(other_cmd(&fake, &["status", "job-zzz"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no job job-zzz"), "{}", r.stderr);

    // Cancel, then status shows it.
    fake.add_job("job-b");
    let r = run(other_cmd(&fake, &["cancel", "job-b", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["remote_status"], "CANCELLED");
    let r = run(other_cmd(&fake, &["status", "job-b"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("CANCELLED"), "{}", r.stderr);
    let r = run(other_cmd(&fake, &["cancel", "job-nope"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("404"), "{}", r.stderr);
}

/// A bare workflow whose node happens to have the ID "input" is not a RunPod request: that
/// node's keys must not leak into the request's `input` object.
#[test]
fn a_node_called_input_is_not_taken_for_the_request_wrapper() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("wf.json");
    std::fs::write(
        &wf,
        r#"{"input": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "save": {"class_type": "SaveImage", "inputs": {"images": ["input", 0], "filename_prefix": "x"}}}"#,
    )
    .unwrap();
    let cli = comfyctl::cli::Cli::parse_from([
        "comfyctl",
        "send",
        wf.to_str().unwrap(),
        "--runpod-url",
        "http://127.0.0.1:9",
        "--no-normalize",
    ]);
    let comfyctl::cli::Command::Send(args) = cli.command else {
        panic!("not a send")
    };
    let reporter = comfyctl::report::Reporter::with_mode(comfyctl::report::Mode::Quiet, 0);
    let settings =
        comfyctl::settings::SendSettings::resolve(&args, &comfyctl::settings::process_env).unwrap();
    let prepared = comfyctl::job::prepare(&settings, &reporter).unwrap();
    let (body, _) =
        comfyctl::runpod::build_request(&settings.runpod, &settings.client_id, &prepared);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let input = body["input"].as_object().unwrap();
    assert!(
        input.get("class_type").is_none() && input.get("inputs").is_none(),
        "{input:?}"
    );
    assert_eq!(input["workflow"]["input"]["class_type"], "EmptyImage");
}

/// A cancel while `POST /run` is still waiting for its answer: the job exists on RunPod but its
/// ID is in the answer. comfyctl waits for it (bounded) and cancels that job instead of leaving
/// a paid job running.
#[test]
fn ctrl_c_during_a_slow_submit_still_cancels_the_job_it_created() {
    let fake = FakeRunpod::start(Script {
        submit_delay: Duration::from_secs(2),
        queue_for: Duration::from_secs(30),
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("comfyctl"))
        .current_dir(root())
        .env_remove("RUNPOD_URL")
        .env_remove("RUNPOD_API_KEY")
        .args([
            "send",
            "workflows/cpu_smoke_webp.json",
            "--image",
            "workflows/example.png",
            "--runpod-url",
            &fake.url(),
            "-o",
        ])
        .arg(d.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(fake.count("POST", "/run"), 1, "the submit is in flight");
    let ok = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(fake.count("POST", "/cancel"), 1, "{err}");
    assert!(err.contains("was cancelled"), "{err}");
}

/// `--sync` with a deadline: `/runsync` is held for at most half of it, so the job ID arrives
/// before the deadline and the job is cancelled when it runs out.
#[test]
fn sync_with_a_timeout_cancels_the_job_it_created() {
    let fake = FakeRunpod::start(Script {
        run_for: Duration::from_secs(30),
        ..ok_script()
    });
    let d = tempfile::tempdir().unwrap();
    let mut c = send_t(&fake, d.path(), "4s");
    c.arg("--sync");
    let r = run(c);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(fake.count("POST", "/cancel"), 1, "{}", r.stderr);
    assert!(r.stderr.contains("was cancelled"), "{}", r.stderr);
}

/// `status --wait` that runs out of time leaves the job alone and prints a cancel command that
/// works when pasted (it names the endpoint).
#[test]
fn status_wait_timeout_prints_a_pasteable_cancel_command() {
    let fake = FakeRunpod::start(Script {
        outcome: Outcome::StuckInQueue,
        ..ok_script()
    });
    fake.add_job("job-s");
    let r = run(other_cmd(
        &fake,
        &["status", "job-s", "--wait", "--timeout", "1s"],
    ));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "job job-s keeps running (cancel it with: comfyctl cancel job-s --runpod-url {})",
            fake.url()
        )),
        "{}",
        r.stderr
    );
    assert_eq!(fake.count("POST", "/cancel"), 0);
}
