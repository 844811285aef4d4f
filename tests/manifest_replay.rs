//! Manifests written by `send` and `comfyctl replay`, running the real binary against the
//! in-process fakes (tests/common). Everything talks to 127.0.0.1 only.

#[path = "common/fake_comfy.rs"]
mod fake_comfy;
#[path = "common/fake_runpod.rs"]
mod fake_runpod;

use assert_cmd::Command;
use base64::Engine as _;
use comfyctl::manifest::{sha256_hex, structural_hash};
use fake_comfy::{FakeComfy, Scenario};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn object_info() -> String {
    std::fs::read_to_string(repo("tests/fixtures/object_info_smoke.json")).unwrap()
}

fn fake() -> FakeComfy {
    FakeComfy::start(Scenario {
        object_info: Some(object_info()),
        ..Scenario::default()
    })
}

fn comfyctl() -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env_remove("COMFY_URL")
        .env_remove("COMFY_CLIENT_ID")
        .env_remove("RUNPOD_URL")
        .env_remove("RUNPOD_ENDPOINT_ID")
        .env_remove("RUNPOD_API_KEY")
        .timeout(Duration::from_secs(60));
    c
}

/// `send` of the smoke workflow with `image` to the fake ComfyUI.
fn send(fake: &FakeComfy, image: &Path, out: &Path) -> Command {
    let mut c = comfyctl();
    c.arg("send")
        .arg(repo("workflows/cpu_smoke_webp.json"))
        .arg("--image")
        .arg(image)
        .arg("--url")
        .arg(&fake.url)
        .arg("-o")
        .arg(out)
        .arg("--no-preflight");
    c
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

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout not JSON ({e}):\n{}\n{}", r.stdout, r.stderr))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The node maps of every `POST /prompt` the fake received, in order.
fn prompts(fake: &FakeComfy) -> Vec<Value> {
    fake.log()
        .iter()
        .filter_map(|l| l.strip_prefix("prompt-body "))
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["prompt"].clone())
        .collect()
}

fn manifests_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("comfyctl-") && n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A copy of the example image in `dir`, so a test can change it.
fn image_copy(dir: &Path) -> PathBuf {
    let p = dir.join("input.png");
    std::fs::copy(repo("workflows/example.png"), &p).unwrap();
    p
}

#[test]
fn send_writes_a_manifest_with_every_field() {
    let fake = fake();
    let d = tempfile::tempdir().unwrap();
    let img = repo("workflows/example.png");
    let mut c = send(&fake, &img, d.path());
    c.args(["--set", "2.width=96", "--json"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    let path = PathBuf::from(v["manifest"].as_str().expect("manifest path in --json"));
    let job_id = v["job_id"].as_str().unwrap();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("comfyctl-{job_id}.json")
    );
    assert_eq!(path.parent().unwrap(), d.path());
    let m = read_json(&path);

    assert_eq!(m["manifest_version"], 1);
    assert_eq!(m["comfyctl_version"], env!("CARGO_PKG_VERSION"));
    let created = m["created"].as_str().unwrap();
    assert!(
        humantime::parse_rfc3339(created).is_ok() && created.ends_with('Z'),
        "{created}"
    );
    assert_eq!(m["target"]["kind"], "comfyui");
    assert_eq!(m["target"]["url"], fake.url.trim_end_matches('/'));
    assert_eq!(m["client_id"], "runpod-worker-stable-client");
    assert_eq!(m["job_id"], job_id);

    // The workflow exactly as the server received it, and its structural hash.
    let sent = prompts(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(m["workflow"], sent[0]);
    assert_eq!(m["workflow_sha256"], structural_hash(&sent[0]));
    let uploaded = fake.uploaded_names();
    let load = m["workflow"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["class_type"] == "LoadImage")
        .unwrap();
    assert_eq!(load["inputs"]["image"], uploaded[0]);

    // What was injected.
    let inj = &m["injected"];
    let image = &inj["images"][0];
    assert_eq!(
        image["path"],
        std::fs::canonicalize(&img).unwrap().to_str().unwrap()
    );
    assert_eq!(image["sha256"], sha256_hex(&std::fs::read(&img).unwrap()));
    assert_eq!(image["server_name"], uploaded[0]);
    assert_eq!(
        m["workflow"][image["node"].as_str().unwrap()]["class_type"],
        "LoadImage"
    );
    assert_eq!(
        inj["sets"],
        json!([{"node": "2", "input": "width", "value": 96}])
    );
    assert!(inj["prompt"].is_null() && inj["negative"].is_null() && inj["seed"].is_null());

    // What the server said about itself.
    let s = &m["server"];
    assert_eq!(s["comfyui_version"], "0.3.64");
    assert_eq!(s["device"]["name"], "cpu");
    assert_eq!(s["cache"], "classic");
    let schema = s["node_schema"].as_object().unwrap();
    let mut classes: Vec<&str> = schema.keys().map(String::as_str).collect();
    classes.sort();
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
    let full: Value = serde_json::from_str(&object_info()).unwrap();
    assert_eq!(schema["ImageScale"], full["ImageScale"]["input"]);
    assert_eq!(s["node_schema_sha256"], structural_hash(&s["node_schema"]));
    // Only per-class schema requests, never the whole /object_info.
    assert!(!fake.log().iter().any(|l| l == "GET /object_info"));
    assert!(fake
        .log()
        .iter()
        .any(|l| l == "GET /object_info/ImageScale"));

    // Nodes, timings, outputs.
    assert_eq!(m["nodes"]["executed"], v["nodes"]["executed"]);
    assert!(m["nodes"]["executed"].as_u64().unwrap() > 0);
    assert_eq!(m["timings"]["total_s"], v["timings"]["total_s"]);
    let outs = m["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), v["outputs"].as_array().unwrap().len());
    assert!(!outs.is_empty());
    for o in outs {
        let bytes = std::fs::read(o["path"].as_str().unwrap()).unwrap();
        assert_eq!(o["sha256"], sha256_hex(&bytes));
        assert_eq!(o["bytes"], bytes.len());
        assert_eq!(o["format"], "webp");
        assert!(o["node"].is_string());
    }
}

#[test]
fn replay_resends_the_identical_prompt_and_writes_its_own_manifest() {
    let fake = fake();
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let r = run(send(&fake, &repo("workflows/example.png"), d1.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m1 = d1.path().join(&manifests_in(d1.path())[0]);

    // No target flag: the recorded server.
    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m1)
        .arg("-o")
        .arg(d2.path())
        .arg("--json");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sent = prompts(&fake);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
    assert_eq!(
        serde_json::to_string(&sent[0]).unwrap(),
        serde_json::to_string(&sent[1]).unwrap()
    );
    let v = json_of(&r);
    let m2 = read_json(Path::new(v["manifest"].as_str().unwrap()));
    let m1 = read_json(&m1);
    assert_eq!(m2["workflow_sha256"], m1["workflow_sha256"]);
    assert_ne!(m2["job_id"], m1["job_id"]);
    assert!(!r.stderr.contains("changed since"), "{}", r.stderr);

    // `diff` reads manifests: identical workflows.
    let mut c = comfyctl();
    c.arg("diff")
        .arg(d1.path().join(&manifests_in(d1.path())[0]))
        .arg(Path::new(v["manifest"].as_str().unwrap()));
    let r = run(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn replay_goes_to_another_server_when_told_and_the_environment_does_not_redirect_it() {
    let (a, b) = (fake(), fake());
    let d = tempfile::tempdir().unwrap();
    let r = run(send(
        &a,
        &repo("workflows/example.png"),
        &d.path().join("1"),
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = d
        .path()
        .join("1")
        .join(&manifests_in(&d.path().join("1"))[0]);

    // COMFY_URL names b, but the manifest recorded a: a gets the replay.
    let mut c = comfyctl();
    c.env("COMFY_URL", &b.url)
        .arg("replay")
        .arg(&m)
        .arg("-o")
        .arg(d.path().join("2"));
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((prompts(&a).len(), prompts(&b).len()), (2, 0));

    // --url sends it to b, with the image uploaded there first.
    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m)
        .args(["--url", &b.url, "--json", "-o"])
        .arg(d.path().join("3"));
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["target"]["url"], b.url.trim_end_matches('/'));
    assert_eq!(prompts(&b), [prompts(&a)[0].clone()]);
    assert_eq!(b.uploaded_names(), a.uploaded_names());
    let m3 = read_json(Path::new(v["manifest"].as_str().unwrap()));
    assert_eq!(m3["target"]["url"], b.url.trim_end_matches('/'));
    assert_eq!(m3["workflow_sha256"], read_json(&m)["workflow_sha256"]);
}

#[test]
fn replay_with_a_new_seed_changes_only_the_seed() {
    // A workflow with a seed input (the fake runs any class).
    let d = tempfile::tempdir().unwrap();
    let mut w: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("workflows/cpu_smoke_webp.json")).unwrap(),
    )
    .unwrap();
    w["9"] = json!({"class_type": "RandomNoise", "inputs": {"noise_seed": 5}});
    w["10"] = json!({"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x", "seed": 7}});
    let wf = d.path().join("seeded.json");
    std::fs::write(&wf, w.to_string()).unwrap();
    let fake = FakeComfy::start(Scenario::default());
    let (d1, d2) = (d.path().join("a"), d.path().join("b"));
    let mut c = comfyctl();
    c.arg("send")
        .arg(&wf)
        .arg("--image")
        .arg(repo("workflows/example.png"))
        .args(["--url", &fake.url, "--no-preflight", "--seed", "42", "-o"])
        .arg(&d1);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m1 = d1.join(&manifests_in(&d1)[0]);
    assert_eq!(read_json(&m1)["injected"]["seed"], 42);

    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m1)
        .args(["--seed", "43", "-o"])
        .arg(&d2);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m2 = d2.join(&manifests_in(&d2)[0]);
    assert_eq!(read_json(&m2)["injected"]["seed"], 43);
    let mut c = comfyctl();
    c.args(["diff", "--json"]).arg(&m1).arg(&m2);
    let r = run(c);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("42") && r.stdout.contains("43"),
        "{}",
        r.stdout
    );
    let sent = prompts(&fake);
    let seeds = |p: &Value| {
        let mut v: Vec<Value> = p
            .as_object()
            .unwrap()
            .values()
            .filter_map(|n| {
                n["inputs"]
                    .get("seed")
                    .or(n["inputs"].get("noise_seed"))
                    .cloned()
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(seeds(&sent[0]), [json!(42), json!(42)]);
    assert_eq!(seeds(&sent[1]), [json!(43), json!(43)]);
}

#[test]
fn replay_refuses_a_changed_or_missing_image_before_sending() {
    let fake = fake();
    let d = tempfile::tempdir().unwrap();
    let img = image_copy(d.path());
    let out = d.path().join("out");
    let r = run(send(&fake, &img, &out));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = out.join(&manifests_in(&out)[0]);
    let posts = |f: &FakeComfy| f.log().iter().filter(|l| *l == "POST /prompt").count();
    assert_eq!(posts(&fake), 1);

    let mut bytes = std::fs::read(&img).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&img, &bytes).unwrap();
    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m)
        .arg("-o")
        .arg(d.path().join("again"));
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("input.png") && r.stderr.contains("changed"),
        "{}",
        r.stderr
    );
    assert_eq!(posts(&fake), 1);

    std::fs::remove_file(&img).unwrap();
    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m)
        .arg("-o")
        .arg(d.path().join("again"));
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("input.png") && r.stderr.contains("cannot be read"),
        "{}",
        r.stderr
    );
    assert_eq!(posts(&fake), 1);
    assert!(!d.path().join("again").exists());
}

#[test]
fn replay_reports_node_schema_drift_and_strict_drift_refuses() {
    let fake = fake();
    let d = tempfile::tempdir().unwrap();
    let r = run(send(&fake, &repo("workflows/example.png"), d.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = d.path().join(&manifests_in(d.path())[0]);

    let mut oi: Value = serde_json::from_str(&object_info()).unwrap();
    oi.as_object_mut().unwrap().remove("ImageInvert");
    oi["ImageScale"]["input"]["required"]["upscale_method"][0] =
        json!(["nearest-exact", "bilinear", "lanczos3"]);
    oi["ImageScale"]["input"]["required"]["width"][0] = json!("FLOAT");
    oi["ImageScale"]["input"]["optional"] = json!({"antialias": ["BOOLEAN", {}]});
    fake.set(|s| s.object_info = Some(oi.to_string()));

    let mut c = comfyctl();
    c.arg("replay")
        .arg(&m)
        .arg("--strict-drift")
        .arg("-o")
        .arg(d.path().join("x"));
    let r = run(c);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--strict-drift"), "{}", r.stderr);
    assert_eq!(prompts(&fake).len(), 1, "nothing sent with --strict-drift");

    let mut c = comfyctl();
    c.arg("replay").arg(&m).arg("-o").arg(d.path().join("y"));
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for want in [
        "the server changed since the manifest was written",
        "class ImageInvert: no longer on the server",
        "ImageScale.upscale_method: values no longer allowed: 'area', 'bicubic', 'lanczos'",
        "ImageScale.upscale_method: new allowed values: 'lanczos3'",
        "ImageScale.width: type INT then, FLOAT now",
        "ImageScale.antialias: new input (BOOLEAN)",
    ] {
        assert!(r.stderr.contains(want), "{want} not in:\n{}", r.stderr);
    }
    assert_eq!(prompts(&fake).len(), 2);
}

#[test]
fn no_manifest_writes_none() {
    let fake = fake();
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, &repo("workflows/example.png"), d.path());
    c.args(["--no-manifest", "--json"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    assert!(v.as_object().unwrap().contains_key("manifest"));
    assert!(v["manifest"].is_null());
    assert!(manifests_in(d.path()).is_empty());
    assert!(!fake.log().iter().any(|l| l.starts_with("GET /object_info")));
}

#[test]
fn a_server_without_per_class_schema_records_no_fingerprint() {
    let fake = FakeComfy::start(Scenario::default());
    let d = tempfile::tempdir().unwrap();
    let mut c = send(&fake, &repo("workflows/example.png"), d.path());
    c.arg("--json");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = read_json(Path::new(json_of(&r)["manifest"].as_str().unwrap()));
    assert!(m["server"]["node_schema"].is_null(), "{}", m["server"]);
    assert!(
        m["server"]["node_schema_sha256"].is_null(),
        "{}",
        m["server"]
    );
    assert_eq!(m["server"]["comfyui_version"], "0.3.64");
}

#[test]
fn runpod_manifest_never_overwrites_an_existing_one() {
    use fake_runpod::{FakeRunpod, Outcome, Script};
    let webp = std::fs::read(repo("tests/fixtures/runpod_output.webp")).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(&webp);
    let script = || {
        Script {
        outcome: Outcome::Completed(Arc::new(
            json!({"images": [{"filename": "ComfyUI_00001_.webp", "type": "base64", "data": data}]})
                .to_string(),
        )),
        ..Script::default()
    }
    };
    let d = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    // Two fresh fakes number their jobs alike: the same job ID twice into one directory.
    for _ in 0..2 {
        let fake = FakeRunpod::start(script());
        let mut c = comfyctl();
        c.arg("send")
            .arg(repo("workflows/cpu_smoke_webp.json"))
            .arg("--image")
            .arg(repo("workflows/example.png"))
            .args([
                "--runpod-url",
                &fake.url(),
                "--poll-interval",
                "50ms",
                "--json",
                "-o",
            ])
            .arg(d.path());
        let r = run(c);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v = json_of(&r);
        paths.push((
            PathBuf::from(v["manifest"].as_str().unwrap()),
            v["job_id"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(paths[0].1, paths[1].1, "the fakes gave the same job ID");
    assert_ne!(paths[0].0, paths[1].0);
    let first = read_json(&paths[0].0);
    let second = read_json(&paths[1].0);
    assert_eq!(
        paths[1].0.file_name().unwrap().to_str().unwrap(),
        format!("comfyctl-{}-1.json", paths[1].1)
    );
    assert_eq!(first["job_id"], second["job_id"]);
    assert_ne!(first["outputs"][0]["path"], second["outputs"][0]["path"]);
    assert_eq!(first["target"]["kind"], "runpod");
    assert_eq!(first["server"]["worker_id"], "fake-worker-1");
    assert!(first["server"]
        .as_object()
        .unwrap()
        .contains_key("endpoint_id"));
    assert_eq!(
        first["outputs"][0]["sha256"],
        sha256_hex(&std::fs::read(first["outputs"][0]["path"].as_str().unwrap()).unwrap())
    );
    assert_eq!(manifests_in(d.path()).len(), 2);
}
