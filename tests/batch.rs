//! `comfyctl batch` against the in-process fakes: many jobs at once, a journal that survives
//! SIGKILL without a job submitted twice, one backoff for a 429 burst, cache-aware order on a
//! fake ComfyUI with a last-prompt-only cache, a dead server taken out, and every bad line
//! reported before anything is sent. Every test runs the real binary.

#[path = "common/fake_comfy.rs"]
mod fake_comfy;
#[path = "common/fake_runpod.rs"]
mod fake_runpod;

use assert_cmd::Command;
use base64::Engine as _;
use fake_comfy::{FakeComfy, Scenario};
use fake_runpod::{FakeRunpod, Fault, Outcome, Script};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runpod_script() -> Script {
    let webp = std::fs::read(root().join("tests/fixtures/runpod_output.webp")).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(webp);
    Script {
        queue_for: Duration::ZERO,
        run_for: Duration::ZERO,
        outcome: Outcome::Completed(Arc::new(
            json!({"images": [{"filename": "ComfyUI_00001_.webp", "type": "base64", "data": data}]})
                .to_string(),
        )),
        ..Script::default()
    }
}

/// A job file of `n` smoke-workflow jobs, each with its own width (so each request body differs).
fn smoke_jobs(dir: &Path, n: usize) -> PathBuf {
    std::fs::copy(
        root().join("workflows/cpu_smoke_webp.json"),
        dir.join("wf.json"),
    )
    .unwrap();
    std::fs::copy(root().join("workflows/example.png"), dir.join("in.png")).unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| json!({"id": format!("j{i:03}"), "workflow": "wf.json", "image": "in.png", "set": {"image_scale_1.width": 100 + i}}).to_string())
        .collect();
    let p = dir.join("jobs.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn batch(jobs: &Path, out: &Path) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env_remove("RUNPOD_API_KEY")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_URL")
        .env_remove("COMFY_URL")
        .env("COMFYCTL_RUNPOD_RETRY_WINDOW", "20s")
        .arg("batch")
        .arg(jobs)
        .arg("-o")
        .arg(out)
        .timeout(Duration::from_secs(120));
    c
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// How many times each distinct `/run` body was posted.
fn submits_per_body(fake: &FakeRunpod) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for r in fake.requests() {
        if r.method == "POST" && r.path.starts_with("/run") {
            *m.entry(r.body).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn two_hundred_jobs_on_runpod_then_a_rerun_sends_nothing() {
    let fake = FakeRunpod::start(runpod_script());
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 200);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "-j", "16", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 201, "one line per job, then the summary");
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["succeeded"], 200);
    assert_eq!(summary["failed"], 0);
    for l in &lines[..200] {
        assert_eq!(l["status"], "completed");
        assert!(l["id"].as_str().unwrap().starts_with('j'));
        assert!(l["line"].is_number());
        assert_eq!(l["outputs"].as_array().unwrap().len(), 1);
    }
    // 200 outputs, and a manifest for each job (the engine writes them).
    let names: Vec<String> = std::fs::read_dir(d.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let manifests = names
        .iter()
        .filter(|n| n.starts_with("comfyctl-") && n.ends_with(".json"))
        .count();
    assert_eq!((names.len() - manifests, manifests), (200, 200));
    assert!(submits_per_body(&fake).values().all(|&n| n == 1));
    assert_eq!(fake.count("POST", "/run"), 200);
    // The same command again: everything is done, nothing is sent.
    let again = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url()])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("200 job(s) already finished"));
    assert_eq!(fake.count("POST", "/run"), 200);
}

#[test]
fn sigkill_mid_batch_and_a_rerun_submit_no_job_twice() {
    let fake = FakeRunpod::start(Script {
        run_for: Duration::from_millis(400),
        ..runpod_script()
    });
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 40);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("comfyctl"))
        .env_remove("RUNPOD_URL")
        .env_remove("COMFY_URL")
        .args([
            "batch",
            jobs.to_str().unwrap(),
            "--runpod-url",
            &fake.url(),
            "-j",
            "8",
            "-q",
            "-o",
        ])
        .arg(d.path().join("out"))
        .spawn()
        .unwrap();
    // Kill once some jobs are submitted and some finished.
    for _ in 0..100 {
        if fake.count("POST", "/run") >= 12 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = fake.count("POST", "/run");
    assert!(
        before > 0 && before < 40,
        "killed mid-batch: {before} submitted"
    );
    // Re-run: attaches to what was accepted, holds what may have been submitted without an
    // answer, submits the rest; never a body twice.
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "-j", "8", "--json"])
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    let unknown = summary["unknown"].as_u64().unwrap();
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(
        n("succeeded") + n("skipped_finished") + unknown,
        40,
        "{summary}"
    );
    assert_eq!(n("failed"), 0, "{summary}");
    assert_eq!(out.status.code(), Some(if unknown > 0 { 1 } else { 0 }));
    let dup: Vec<_> = submits_per_body(&fake)
        .into_values()
        .filter(|&n| n > 1)
        .collect();
    assert!(dup.is_empty(), "a job was submitted twice: {dup:?}");
    // Every finished job's output is on disk.
    let outputs = std::fs::read_dir(d.path().join("out")).unwrap().count();
    assert!(outputs as u64 >= 40 - unknown, "{outputs} outputs");
}

#[test]
fn a_kill_between_journal_and_answer_is_held_as_unknown() {
    let fake = FakeRunpod::start(runpod_script());
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 3);
    // The journal of a run killed right after it announced j001's submit.
    std::fs::write(
        d.path().join("jobs.state.jsonl"),
        "{\"ev\":\"submitting\",\"id\":\"j001\",\"t\":1.0}\n",
    )
    .unwrap();
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job j001") && err.contains("--resubmit-unknown"),
        "{err}"
    );
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["unknown_ids"], json!(["j001"]));
    assert_eq!(fake.count("POST", "/run"), 2);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "--resubmit-unknown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(fake.count("POST", "/run"), 3);
}

#[test]
fn a_submit_that_never_connected_is_a_failure_not_unknown() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 2);
    let out = batch(&jobs, &d.path().join("out"))
        .env("COMFYCTL_RUNPOD_RETRY_WINDOW", "1s")
        .args(["--runpod-url", &dead, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["failed"], 2, "{summary}");
    assert_eq!(
        summary["unknown"], 0,
        "refused connections never reached RunPod: {summary}"
    );
    // With the endpoint back, --retry-failed sends them.
    let fake = FakeRunpod::start(runpod_script());
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "--retry-failed"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(fake.count("POST", "/run"), 2);
}

#[test]
fn a_429_burst_is_one_backoff_for_the_whole_batch() {
    let fake = FakeRunpod::start(Script {
        submit_faults: vec![Fault::Http(429, Some("1")); 4],
        ..runpod_script()
    });
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 12);
    let t = std::time::Instant::now();
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "-j", "4", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out.stdout).pop().unwrap()["succeeded"], 12);
    // 4 answers of 429, then 12 accepted submits: the in-flight jobs waited out one
    // Retry-After together instead of each hammering the endpoint.
    assert_eq!(fake.count("POST", "/run"), 16);
    assert!(t.elapsed() < Duration::from_secs(15));
}

#[test]
fn failed_jobs_are_listed_kept_failed_on_rerun_and_retried_on_request() {
    let bad = FakeRunpod::start(Script {
        outcome: Outcome::Failed(json!("CUDA out of memory")),
        ..runpod_script()
    });
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 3);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &bad.url(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out.stdout);
    assert!(lines[..3]
        .iter()
        .all(|l| l["status"] == "error" && l["error"]["kind"] == "failed"));
    let mut ids: Vec<String> = serde_json::from_value(lines[3]["failed_ids"].clone()).unwrap();
    ids.sort();
    assert_eq!(ids, ["j000", "j001", "j002"]);
    // Re-run: failed jobs stay failed (not paid again) unless asked.
    let good = FakeRunpod::start(runpod_script());
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &good.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(good.count("POST", "/run"), 0);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &good.url(), "--retry-failed"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(good.count("POST", "/run"), 3);
}

#[test]
fn every_bad_line_is_reported_before_anything_is_sent() {
    let fake = FakeRunpod::start(runpod_script());
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 5);
    // One line points at an image that is not a file: caught before anything is sent.
    let mut text = std::fs::read_to_string(&jobs).unwrap();
    text.push_str("{\"id\": \"bad\", \"workflow\": \"wf.json\", \"image\": \"missing.png\"}\n{\"id\": \"j000\", \"workflow\": \"nope.json\"}\n{\"promt\": 1}\n");
    std::fs::write(&jobs, text).unwrap();
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 problems in the job file; nothing was sent"),
        "{err}"
    );
    assert!(
        err.contains("line 6 (job bad)") && err.contains("missing.png"),
        "{err}"
    );
    assert!(err.contains("line 7 (job j000), field 'id'"), "{err}");
    assert!(
        err.contains("line 8") && err.contains("did you mean 'prompt'"),
        "{err}"
    );
    assert_eq!(fake.count("POST", "/run"), 0);
    assert!(!d.path().join("out").exists());
}

#[test]
fn cache_aware_order_loads_each_model_once_per_server() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_millis(20),
        ..Scenario::default()
    });
    let d = tempfile::tempdir().unwrap();
    let sd: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("workflows/sdxl_t2i.json")).unwrap(),
    )
    .unwrap();
    let mut other = sd.clone();
    for n in other.as_object_mut().unwrap().values_mut() {
        if n["class_type"] == "CheckpointLoaderSimple" {
            n["inputs"]["ckpt_name"] = json!("other_model.safetensors");
        }
    }
    std::fs::write(d.path().join("a.json"), sd.to_string()).unwrap();
    std::fs::write(d.path().join("b.json"), other.to_string()).unwrap();
    // Interleaved: a, b, a, b, ... — in file order every job reloads the checkpoint.
    let lines: Vec<String> = (0..8)
        .map(|i| json!({"id": format!("k{i}"), "workflow": if i % 2 == 0 {"a.json"} else {"b.json"}, "prompt": format!("a fox, take {i}"), "seed": i}).to_string())
        .collect();
    let jobs = d.path().join("mix.jsonl");
    std::fs::write(&jobs, lines.join("\n") + "\n").unwrap();
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--url", &fake.url, "--json", "--dry-run"])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["model_groups"], 2);
    assert_eq!(
        plan["model_loads"],
        json!({"scheduled": 2, "submission_order": 8})
    );
    let order: Vec<&str> = plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["k0", "k2", "k4", "k6", "k1", "k3", "k5", "k7"]);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--url", &fake.url, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["succeeded"], 8);
    // Measured on the fake's last-prompt-only cache: the checkpoint loader ran once per group.
    assert_eq!(summary["nodes"]["loaders_executed"], 2, "{summary}");
    assert_eq!(summary["model_loads"]["scheduled"], 2);
    assert_eq!(summary["model_loads"]["submission_order"], 8);
}

#[test]
fn a_dead_server_is_taken_out_and_its_jobs_run_elsewhere() {
    let fake = FakeComfy::start(Scenario {
        exec_time: Duration::from_millis(10),
        ..Scenario::default()
    });
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 10);
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--url", &dead, "--url", &fake.url, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.last().unwrap()["succeeded"], 10);
    assert!(lines[..10]
        .iter()
        .all(|l| l["target"]["url"] == fake.url.as_str()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken out of the batch"));
    assert_eq!(fake.history_ids().len(), 10);
}

/// Headless Chromium, when installed (Debian's `chromium`; `.ci/run` installs it). Missing: the
/// test says so and passes, except under CI=true, where it fails.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|n| PathBuf::from("/usr/bin").join(n))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but no Chromium in /usr/bin: .ci/run must install Debian's chromium"
        );
        eprintln!("skipped: no Chromium in /usr/bin (apt-get install chromium) to check the --report page");
    }
    found
}

#[test]
fn the_report_page_shows_every_output_and_the_errors_in_a_real_browser() {
    let Some(browser) = chromium() else { return };
    let fake = FakeRunpod::start(Script {
        submit_faults: vec![Fault::Http(400, None)],
        ..runpod_script()
    });
    let d = tempfile::tempdir().unwrap();
    let jobs = smoke_jobs(d.path(), 4);
    let page = d.path().join("site/report.html");
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--runpod-url", &fake.url(), "-j", "1", "--report"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(r#"src="../out/"#),
        "media paths are relative to the page: {html}"
    );
    assert!(!html.contains(r#"src="/"#), "{html}");
    let dom = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Three jobs saved one animated WEBP each; the browser decoded every one.
    assert!(dom.contains(r#"data-media-total="3""#), "{dom}");
    assert!(dom.contains(r#"data-media-loaded="3""#), "{dom}");
    assert!(dom.contains(r#"data-media-broken="0""#), "{dom}");
    assert_eq!(dom.matches(r#"data-media="loaded""#).count(), 3);
    // The failed job's card shows its error.
    let failed = dom
        .find(r#"class="card failed""#)
        .unwrap_or_else(|| panic!("a failed card: {dom}"));
    assert!(
        dom[failed..].contains("refused the request (HTTP 400)"),
        "{dom}"
    );
}

/// On a real ComfyUI (`COMFY_TEST_URL`, e.g. a CPU-only server running `python main.py --cpu`):
/// two model-free workflows interleaved in the job file. Run in scheduled order, the second job
/// of each group finds everything in ComfyUI's (last-prompt-only) cache; in file order nothing
/// would be. Skipped, with the reason printed, when no server is given.
#[test]
fn real_comfyui_batch_when_available() {
    let Some(url) = std::env::var("COMFY_TEST_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: set COMFY_TEST_URL to a real ComfyUI to run batch against it");
        return;
    };
    let shared = root().join("../shared/fixtures/workflows/wf_webp_emptyimage.json");
    let Ok(text) = std::fs::read_to_string(&shared) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI=true but {} is missing",
            shared.display()
        );
        eprintln!(
            "skipped: {} not found (../shared beside the repository)",
            shared.display()
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let mut wf: Value = serde_json::from_str(&text).unwrap();
    std::fs::write(d.path().join("a.json"), wf.to_string()).unwrap();
    // A second workflow: other sizes, so a different prompt (and model key) for ComfyUI.
    for n in wf.as_object_mut().unwrap().values_mut() {
        if n["class_type"] == "EmptyImage" {
            n["inputs"]["width"] = json!(96);
        }
    }
    std::fs::write(d.path().join("b.json"), wf.to_string()).unwrap();
    let lines: Vec<String> = (0..4)
        .map(|i| {
            json!({"id": format!("r{i}"), "workflow": if i % 2 == 0 {"a.json"} else {"b.json"}})
                .to_string()
        })
        .collect();
    let jobs = d.path().join("real.jsonl");
    std::fs::write(&jobs, lines.join("\n") + "\n").unwrap();
    let out = batch(&jobs, &d.path().join("out"))
        .args(["--url", &url, "--json", "-j", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["succeeded"], 4, "{summary}");
    assert_eq!(
        summary["model_loads"],
        json!({"scheduled": 2, "submission_order": 4, "servers": 1})
    );
    // The second job of each group ran nothing: ComfyUI served it from its cache.
    let all_cached = lines[..4]
        .iter()
        .filter(|l| l["all_cached"] == true)
        .count();
    assert!(all_cached >= 2, "{lines:#?}");
}
