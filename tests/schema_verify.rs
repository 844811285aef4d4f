//! Schema-aware `verify` and the schema sources (`--object-info`, `--server`, the cache), run
//! through the real binary. The fake server is a tiny axum app on 127.0.0.1.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const FIX: &str = "tests/fixtures/schema";

fn fixture(name: &str) -> String {
    format!("{FIX}/{name}")
}

fn comfyctl(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("comfyctl").unwrap();
    c.env("COMFYCTL_CACHE_DIR", cache).env_remove("COMFY_URL");
    c
}

fn diagnostics(stdout: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(stdout).expect("verify --json prints JSON");
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["diagnostics"].as_array().unwrap().clone())
        .collect()
}

fn find<'a>(d: &'a [Value], code: &str, node: &str) -> &'a Value {
    d.iter()
        .find(|x| x["code"] == code && x["node_id"] == node)
        .unwrap_or_else(|| panic!("no {code} on node {node} in {d:#?}"))
}

#[test]
fn reports_each_kind_of_schema_error_with_location() {
    let tmp = tempfile::tempdir().unwrap();
    let out = comfyctl(tmp.path())
        .args(["verify", "--json", "--object-info"])
        .arg(fixture("object_info_min.json"))
        .arg(fixture("bad_api.json"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d = diagnostics(&out);

    let ckpt = find(&d, "value_not_in_list", "1");
    assert_eq!(ckpt["input"], "ckpt_name");
    assert_eq!(ckpt["class_type"], "CheckpointLoaderSimple");
    assert_eq!(ckpt["title"], "Load Checkpoint");
    assert!(ckpt["message"].as_str().unwrap().contains("model file"));
    assert!(ckpt["fix"]
        .as_str()
        .unwrap()
        .starts_with("closest the server has: 'sd_xl_base_1.0.safetensors'"));

    let tm = find(&d, "type_mismatch", "2");
    assert_eq!(tm["input"], "clip");
    assert!(tm["message"].as_str().unwrap().contains("gets MODEL"));
    assert!(tm["fix"].as_str().unwrap().contains("[\"1\", 1]"));

    let range = find(&d, "value_out_of_range", "3");
    assert_eq!(range["input"], "steps");
    assert_eq!(find(&d, "unknown_input", "3")["severity"], "warning");
    assert_eq!(find(&d, "missing_input", "5")["input"], "batch_size");
    assert_eq!(find(&d, "bad_output_index", "6")["input"], "vae");
    let vhs = find(&d, "unknown_class", "7");
    assert!(vhs["fix"]
        .as_str()
        .unwrap()
        .contains("ComfyUI-VideoHelperSuite"));
    let typo = find(&d, "unknown_class", "8");
    assert!(typo["fix"].as_str().unwrap().contains("'SaveImage'"));
}

#[test]
fn clean_workflow_passes_and_no_output_node_fails() {
    let tmp = tempfile::tempdir().unwrap();
    comfyctl(tmp.path())
        .args(["verify", "--object-info"])
        .arg(fixture("object_info_min.json"))
        .arg(fixture("good_api.json"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("error[").not());
    let out = comfyctl(tmp.path())
        .args(["verify", "--json", "--object-info"])
        .arg(fixture("object_info_min.json"))
        .arg(fixture("no_output_api.json"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d = diagnostics(&out);
    assert!(d
        .iter()
        .any(|x| x["code"] == "no_output_node" && x["severity"] == "error"));
}

#[test]
fn verify_converts_a_ui_file_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    // The muted PrimitiveInt feeding KSampler.steps removes `steps` (as the frontend does), so
    // the converted workflow is missing a required input.
    comfyctl(tmp.path())
        .args(["verify", "--object-info"])
        .arg(fixture("object_info_min.json"))
        .arg(fixture("ui_basic.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "UI-format workflow converted to API format (8 nodes)",
        ));
    let out = comfyctl(tmp.path())
        .args(["verify", "--json", "--object-info"])
        .arg(fixture("object_info_min.json"))
        .arg(fixture("ui_basic.json"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d = diagnostics(&out);
    assert_eq!(d[0]["code"], "converted_ui");
    assert_eq!(d[0]["severity"], "info");
    assert_eq!(find(&d, "missing_input", "3")["input"], "steps");
    // Without a schema the UI file is refused with the usual advice.
    comfyctl(tmp.path())
        .args(["verify"])
        .arg(fixture("ui_basic.json"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("Export (API)"));
}

/// A fake ComfyUI answering GET /object_info; dropping the guard stops it.
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(object_info: PathBuf) -> Server {
    serve_behind_proxy(object_info, None)
}

/// [`serve`], answering 401 unless the request carries `Authorization: <auth>`.
fn serve_behind_proxy(object_info: PathBuf, auth: Option<&'static str>) -> Server {
    use axum::response::IntoResponse;
    let body = std::fs::read_to_string(object_info).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = axum::Router::new().route(
        "/object_info",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let body = body.clone();
            async move {
                let given = headers.get("authorization").and_then(|v| v.to_str().ok());
                if auth.is_some() && given != auth {
                    return axum::http::StatusCode::UNAUTHORIZED.into_response();
                }
                ([("content-type", "application/json")], body).into_response()
            }
        }),
    );
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        })
    });
    Server {
        url,
        stop: Some(tx),
        thread: Some(thread),
    }
}

#[test]
fn server_pull_cache_and_offline_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(PathBuf::from(fixture("object_info_min.json")));
    let url = server.url.clone();

    // Live fetch.
    comfyctl(tmp.path())
        .args(["verify", "--server", &url])
        .arg(fixture("good_api.json"))
        .assert()
        .code(0);

    // Offline before any pull: a clear error naming the command to run.
    comfyctl(tmp.path())
        .args(["verify", "--offline", "--server", &url])
        .arg(fixture("good_api.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("comfyctl schema pull --url"));

    comfyctl(tmp.path())
        .args(["schema", "pull", "--url", &url])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("saved 12 node classes"));
    let key = url.trim_start_matches("http://").replace(':', "_");
    assert!(tmp
        .path()
        .join("schemas")
        .join(format!("{key}.json"))
        .exists());
    comfyctl(tmp.path())
        .args(["schema", "list"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(&url));

    drop(server);

    // Server gone: --server falls back to the cache with a warning; --offline never asks.
    comfyctl(tmp.path())
        .args(["verify", "--server", &url])
        .arg(fixture("bad_api.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("using the cached schema"))
        .stdout(predicate::str::contains("ComfyUI-VideoHelperSuite"));
    comfyctl(tmp.path())
        .args(["verify", "--offline", "--server", &url])
        .arg(fixture("good_api.json"))
        .assert()
        .code(0);
}

#[test]
fn verify_server_passes_headers_for_a_server_behind_a_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let server = serve_behind_proxy(
        PathBuf::from(fixture("object_info_min.json")),
        Some("Bearer s3cret-token"),
    );
    let url = server.url.clone();
    // Without the header: credentials refused (exit 3), with the way to pass them.
    comfyctl(tmp.path())
        .args(["verify", "--server", &url])
        .arg(fixture("good_api.json"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--header 'Authorization: ...'"));
    comfyctl(tmp.path())
        .args([
            "verify",
            "--server",
            &url,
            "--header",
            "Authorization: Bearer s3cret-token",
        ])
        .arg(fixture("bad_api.json"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ComfyUI-VideoHelperSuite"))
        .stdout(predicate::str::contains("s3cret").not())
        .stderr(predicate::str::contains("s3cret").not());
    comfyctl(tmp.path())
        .args([
            "verify",
            "--server",
            &url,
            "--header",
            "Authorization: Bearer s3cret-token",
        ])
        .arg(fixture("good_api.json"))
        .assert()
        .code(0);
    // A header without --server has nothing to go to.
    comfyctl(tmp.path())
        .args(["verify", "--header", "Authorization: x"])
        .arg(fixture("good_api.json"))
        .assert()
        .code(2);
}

#[test]
fn unreachable_server_without_cache_is_a_server_error() {
    let tmp = tempfile::tempdir().unwrap();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    comfyctl(tmp.path())
        .args(["verify", "--server", &format!("http://127.0.0.1:{port}")])
        .arg(fixture("good_api.json"))
        .assert()
        .code(5)
        .stderr(predicate::str::contains("/object_info"));
}

#[test]
fn real_capture_names_custom_node_pack_and_missing_models() {
    let Some(capture) = capture() else { return };
    let capture = capture.as_path();
    let tmp = tempfile::tempdir().unwrap();
    let out = comfyctl(tmp.path())
        .args(["verify", "--json", "--object-info"])
        .arg(capture)
        .arg("workflows/wan_i2v.json")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let d = diagnostics(&out);
    let inspire = find(&d, "unknown_class", "55");
    assert!(inspire["fix"]
        .as_str()
        .unwrap()
        .contains("ComfyUI-Inspire-Pack"));
    assert_eq!(find(&d, "value_not_in_list", "39")["input"], "vae_name");
}

#[test]
fn preflight_checks_against_the_live_schema_and_skips_non_comfy_servers() {
    let server = serve(PathBuf::from(fixture("object_info_min.json")));
    let nodes: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("bad_api.json")).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server_at = |u: &str| comfyctl::settings::ComfyServer::parse("--url", u, &[]).unwrap();
    let schema = rt
        .block_on(comfyctl::schema::fetch(&server_at(&server.url)))
        .expect("the fake server serves /object_info");
    let diags = comfyctl::schema::check(&schema, &nodes, "bad_api.json");
    assert!(diags
        .iter()
        .any(|d| d.code == "unknown_class" && d.node_id.as_deref() == Some("7")));
    // A server without /object_info (404): a typed error the preflight skips on (by kind, not
    // by message text).
    let none = rt
        .block_on(comfyctl::schema::fetch(&server_at(&format!(
            "{}/elsewhere",
            server.url
        ))))
        .unwrap_err();
    match none {
        comfyctl::error::Error::Net(e) => assert_eq!(e.status(), Some(404), "{e}"),
        other => panic!("expected an HTTP 404 error, got {other:?}"),
    }
}

#[test]
fn cached_compact_form_of_the_real_capture_checks_the_same() {
    let Some(capture) = capture() else { return };
    let capture = capture.as_path();
    let text = std::fs::read_to_string(capture).unwrap();
    let compact = comfyctl::schema::compact_object_info(&text, "capture").unwrap();
    assert!(
        compact.len() * 2 < text.len(),
        "compact form is much smaller"
    );
    let full = comfyctl::schema::Schema::parse(&text, "full").unwrap();
    let small = comfyctl::schema::Schema::parse(&compact, "compact").unwrap();
    assert_eq!(full.classes.len(), 496);
    let nodes: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string("workflows/wan_i2v.json").unwrap()).unwrap();
    assert_eq!(
        comfyctl::schema::check(&full, &nodes, "w"),
        comfyctl::schema::check(&small, &nodes, "w")
    );
    for (name, def) in &full.classes {
        assert_eq!(
            format!("{def:?}"),
            format!("{:?}", small.classes[name]),
            "{name}"
        );
    }
}

/// The real 496-class capture: `../shared` (as in CI), or `$COMFYCTL_SHARED_DIR`. `None` (with
/// the reason printed) when neither has it, so the suite passes without the shared material.
fn capture() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("COMFYCTL_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../shared"));
    let p = base.join("fixtures/captures/object_info.json");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} not present", p.display());
        None
    }
}

/// A password in `--url` / `--server` never reaches stdout, stderr, the cache file's name, its
/// contents or its `.url` companion, `schema list`, or an error message; and it is sent as a
/// percent-decoded Basic credential (a `+` stays a `+`).
#[test]
fn url_passwords_are_sent_but_never_stored_or_printed() {
    use base64::Engine as _;
    const PW: &str = "s3cret+pw";
    let token: &'static str = Box::leak(
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("user:{PW}"))
        )
        .into_boxed_str(),
    );
    let server = serve_behind_proxy(PathBuf::from(fixture("object_info_min.json")), Some(token));
    let tmp = tempfile::tempdir().unwrap();
    let with_pw = server.url.replace("http://", "http://user:s3cret+pw@");
    let run = |args: &[&str]| {
        let out = comfyctl(tmp.path()).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let leaks = |text: &str| text.contains("s3cret") || text.contains(&token[6..]);

    // The proxy accepts only the exact credential: success proves the '+' arrived intact.
    let (code, text) = run(&["schema", "pull", "--url", &with_pw]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!leaks(&text), "{text}");
    let (code, text) = run(&["schema", "list"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!leaks(&text), "{text}");
    assert!(text.contains(&server.url), "{text}");
    for e in std::fs::read_dir(tmp.path().join("schemas")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        assert!(!leaks(&name), "cache file named {name}");
        let body = std::fs::read_to_string(e.path()).unwrap();
        assert!(!leaks(&body), "{name} holds the password");
    }
    // Live verify with the credential works; a dead server's error names no password.
    let (code, text) = run(&["verify", "--server", &with_pw, &fixture("good_api.json")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!leaks(&text), "{text}");
    let (code, text) = run(&[
        "verify",
        "--server",
        "http://user:s3cret+pw@127.0.0.1:1",
        &fixture("good_api.json"),
    ]);
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("cannot reach"), "{text}");
    assert!(!leaks(&text), "{text}");
}
