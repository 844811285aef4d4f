//! An in-process fake ComfyUI (axum: HTTP + websocket) that follows the real captures in
//! ../shared/fixtures/captures (ComfyUI 0.3.64): `/system_stats`, `/upload/image` (rename on
//! conflict), `/prompt` (400 with `node_errors`, 200 that may carry `node_errors`), `/ws?clientId=`
//! with the real message order (`status`, `execution_start`, `execution_cached`, per node
//! `progress_state`/`executing`/`progress`/`executed`, `execution_success`, `status`, then
//! `executing {node: null}` *after* the history write), `/history/{id}`, `/queue` (GET and
//! `{"delete"}`), `/view`, `/interrupt {"prompt_id"}`.
//!
//! It also reproduces ComfyUI's flaws that a client must survive: events for a client ID with no
//! live socket are dropped; a second socket with the same client ID replaces the first (which
//! stays open and deaf), and when an older socket closes it removes the newer one's registration;
//! the default cache keeps only the last prompt, and an identical resubmission runs nothing and
//! reports the previous run's files.
//!
//! Shared by the integration tests (`tests/send_comfy.rs`) and the benchmark server
//! (`examples/fake_comfy.rs`) through `#[path]`.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, Notify};

/// A file a fake output node produces (overrides the default one).
#[derive(Clone, Debug)]
pub struct FakeFile {
    /// Output key: `images`, `gifs`, `audio`, ...
    pub key: String,
    pub filename: String,
    pub subfolder: String,
    /// `output` or `temp`.
    pub kind: String,
    pub body: Bytes,
}

impl FakeFile {
    pub fn new(filename: &str, body: Vec<u8>) -> Self {
        FakeFile {
            key: "images".into(),
            filename: filename.into(),
            subfolder: String::new(),
            kind: "output".into(),
            body: Bytes::from(body),
        }
    }
}

/// How the fake behaves. Tests change it before (or while) comfyctl runs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Time a prompt takes when nothing is cached (spread over the progress steps).
    pub exec_time: Duration,
    /// Progress steps sent for the "work" node (a sampler, else the first node that runs).
    pub steps: u32,
    /// Files of the first output node, instead of the generated ones.
    pub outputs: Option<Vec<FakeFile>>,
    /// Raise `execution_error` at this node.
    pub fail_node: Option<String>,
    /// Answer `/prompt` with 400 and this body.
    pub reject: Option<Value>,
    /// `node_errors` in a 200 `/prompt` answer.
    pub accept_node_errors: Option<Value>,
    /// Close the websocket(s) of the prompt's client half-way through the work node.
    pub drop_ws_mid_run: bool,
    /// `/view` sends its body in chunks of this size with this pause between them.
    pub view_chunk: usize,
    pub view_delay: Duration,
    /// `system_stats.system.argv`.
    pub argv: Vec<String>,
    /// Do not start prompts (they stay pending) until [`FakeComfy::release`].
    pub hold: bool,
    /// Send a binary preview frame with every progress step.
    pub binary_previews: bool,
    /// Required `Authorization` header value (401 otherwise).
    pub auth: Option<String>,
    /// The body of `GET /object_info` (404 when `None`, like a proxy that hides it).
    pub object_info: Option<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            exec_time: Duration::from_millis(200),
            steps: 4,
            outputs: None,
            fail_node: None,
            reject: None,
            accept_node_errors: None,
            drop_ws_mid_run: false,
            view_chunk: 256 * 1024,
            view_delay: Duration::ZERO,
            argv: vec![
                "main.py".into(),
                "--cpu".into(),
                "--listen".into(),
                "127.0.0.1".into(),
            ],
            hold: false,
            binary_previews: false,
            auth: None,
            object_info: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Job {
    id: String,
    number: i64,
    prompt: Map<String, Value>,
    client_id: Option<String>,
    outputs: Vec<String>,
}

type FileKey = (String, String, String); // (type, subfolder, filename)

/// Shared state; tests read it to check what comfyctl did.
pub struct Inner {
    pub scenario: Mutex<Scenario>,
    sockets: Mutex<HashMap<String, (u64, mpsc::UnboundedSender<Message>)>>,
    socket_seq: AtomicU64,
    files: Mutex<HashMap<FileKey, Bytes>>,
    pending: Mutex<VecDeque<Job>>,
    running: Mutex<Option<Job>>,
    history: Mutex<HashMap<String, Value>>,
    /// The classic cache: the last prompt's nodes and the outputs of its output nodes.
    last: Mutex<(Map<String, Value>, HashMap<String, Value>)>,
    counter: AtomicU64,
    number: Mutex<i64>,
    interrupt: Mutex<Option<String>>,
    wake: Notify,
    /// Every request as `METHOD /path` (+ body for control requests).
    pub log: Mutex<Vec<String>>,
    pub saw_origin: AtomicBool,
    pub saw_credentials_in_query: AtomicBool,
}

/// A running fake server.
pub struct FakeComfy {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub state: Arc<Inner>,
}

impl FakeComfy {
    /// Starts a server on 127.0.0.1 (random port), optionally under a base path like `/comfy`.
    pub fn start(scenario: Scenario) -> FakeComfy {
        Self::start_at(scenario, "")
    }

    pub fn start_at(scenario: Scenario, base: &str) -> FakeComfy {
        let state = Arc::new(Inner {
            scenario: Mutex::new(scenario),
            sockets: Mutex::new(HashMap::new()),
            socket_seq: AtomicU64::new(0),
            files: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::new()),
            running: Mutex::new(None),
            history: Mutex::new(HashMap::new()),
            last: Mutex::new((Map::new(), HashMap::new())),
            counter: AtomicU64::new(0),
            number: Mutex::new(0),
            interrupt: Mutex::new(None),
            wake: Notify::new(),
            log: Mutex::new(Vec::new()),
            saw_origin: AtomicBool::new(false),
            saw_credentials_in_query: AtomicBool::new(false),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let base = base.trim_end_matches('/').to_string();
        let url_base = base.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                tokio::spawn(executor(st.clone()));
                let app = router(st, &base);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("fake server started");
        let url = format!("http://{addr}{url_base}");
        FakeComfy { url, addr, state }
    }

    pub fn set(&self, f: impl FnOnce(&mut Scenario)) {
        f(&mut self.state.scenario.lock().unwrap());
        self.state.wake.notify_one();
    }

    /// Lets held prompts run.
    pub fn release(&self) {
        self.set(|s| s.hold = false);
    }

    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn history_ids(&self) -> Vec<String> {
        self.state.history.lock().unwrap().keys().cloned().collect()
    }

    pub fn running_id(&self) -> Option<String> {
        self.state
            .running
            .lock()
            .unwrap()
            .as_ref()
            .map(|j| j.id.clone())
    }

    pub fn pending_ids(&self) -> Vec<String> {
        self.state
            .pending
            .lock()
            .unwrap()
            .iter()
            .map(|j| j.id.clone())
            .collect()
    }

    /// Puts a file on the server (e.g. an earlier run's output).
    pub fn put_file(&self, kind: &str, subfolder: &str, name: &str, body: Vec<u8>) {
        self.state.files.lock().unwrap().insert(
            (kind.into(), subfolder.into(), name.into()),
            Bytes::from(body),
        );
    }

    /// Deletes every output file (like a worker's cleanup).
    pub fn delete_outputs(&self) {
        self.state
            .files
            .lock()
            .unwrap()
            .retain(|k, _| k.0 != "output");
    }

    pub fn uploaded_names(&self) -> Vec<String> {
        self.state
            .files
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.0 == "input")
            .map(|k| k.2.clone())
            .collect()
    }

    /// Polls `cond` every 10 ms for up to `secs` seconds.
    pub fn wait_for(&self, secs: u64, mut cond: impl FnMut(&FakeComfy) -> bool) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if cond(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// Bytes that start like a real WEBP (`RIFF....WEBPVP8X`), padded to `len`.
pub fn fake_webp(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(30));
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&((len.max(30) - 8) as u32).to_le_bytes());
    v.extend_from_slice(b"WEBPVP8X\x0a\0\0\0\x10\0\0\0\0\0\0\0\0\0");
    v.resize(len.max(30), 0);
    v
}

/// Bytes that start and end like a real PNG (signature + IHDR, IEND chunk last), padded to `len`:
/// comfyctl checks both ends of every output it saves.
pub fn fake_png(len: usize) -> Vec<u8> {
    const IEND: &[u8] = b"\0\0\0\0IEND\xaeB`\x82";
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x40\0\0\0\x40\x08\x06\0\0\0".to_vec();
    v.resize(len.max(v.len() + IEND.len()) - IEND.len(), 0);
    v.extend_from_slice(IEND);
    v
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn router(st: Arc<Inner>, base: &str) -> Router {
    let routes = Router::new()
        .route("/system_stats", get(system_stats))
        .route("/object_info", get(object_info))
        .route("/object_info/:class", get(object_info_class))
        .route("/upload/image", post(upload))
        .route("/prompt", post(post_prompt).get(get_prompt))
        .route("/queue", get(get_queue).post(post_queue))
        .route("/history/:id", get(get_history))
        .route("/view", get(view))
        .route("/interrupt", post(interrupt))
        .route("/ws", get(ws_handler))
        .layer(axum::middleware::from_fn_with_state(st.clone(), guard))
        .with_state(st);
    if base.is_empty() {
        routes
    } else {
        Router::new().nest(base, routes)
    }
}

async fn object_info(State(st): State<Arc<Inner>>) -> Response {
    match st.scenario.lock().unwrap().object_info.clone() {
        Some(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "404: Not Found").into_response(),
    }
}

/// `GET /object_info/{class}`: `{class: entry}` from the same body, `{}` for an unknown class
/// (as ComfyUI answers); 404 when there is no body.
async fn object_info_class(State(st): State<Arc<Inner>>, Path(class): Path<String>) -> Response {
    let Some(body) = st.scenario.lock().unwrap().object_info.clone() else {
        return (StatusCode::NOT_FOUND, "404: Not Found").into_response();
    };
    let all: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut one = Map::new();
    if let Some(e) = all.get(&class) {
        one.insert(class, e.clone());
    }
    axum::Json(Value::Object(one)).into_response()
}

/// Logs every request, notes an `Origin` header (ComfyUI 403s mismatched ones), checks auth.
async fn guard(State(st): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    if req.headers().contains_key("origin") {
        st.saw_origin.store(true, Ordering::SeqCst);
    }
    if req.uri().query().unwrap_or("").contains("password") {
        st.saw_credentials_in_query.store(true, Ordering::SeqCst);
    }
    st.log
        .lock()
        .unwrap()
        .push(format!("{} {}", req.method(), req.uri().path()));
    let need = st.scenario.lock().unwrap().auth.clone();
    if let Some(need) = need {
        let got = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if got != Some(need.as_str()) {
            return (StatusCode::UNAUTHORIZED, "401: Unauthorized").into_response();
        }
    }
    next.run(req).await
}

async fn system_stats(State(st): State<Arc<Inner>>) -> Response {
    let argv = st.scenario.lock().unwrap().argv.clone();
    axum::Json(json!({
        "system": {"os": "posix", "ram_total": 25276518400u64, "ram_free": 24018878464u64,
                   "comfyui_version": "0.3.64", "required_frontend_version": "1.27.10",
                   "python_version": "3.11.7", "pytorch_version": "2.11.0+cu130",
                   "embedded_python": false, "argv": argv},
        "devices": [{"name": "cpu", "type": "cpu", "index": null, "vram_total": 25276518400u64,
                     "vram_free": 24018878464u64, "torch_vram_total": 25276518400u64,
                     "torch_vram_free": 24018878464u64}]
    }))
    .into_response()
}

/// `POST /upload/image`: same name + same bytes reuses the file, same name + different bytes is
/// renamed `name (1).ext` (as the capture shows); no `image` field is a 400 with an empty body.
async fn upload(State(st): State<Arc<Inner>>, mut mp: Multipart) -> Response {
    let mut image: Option<(String, Vec<u8>)> = None;
    let mut kind = "input".to_string();
    let mut subfolder = String::new();
    let mut overwrite = false;
    while let Ok(Some(field)) = mp.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" => {
                let Some(fname) = field.file_name().map(str::to_string) else {
                    return (StatusCode::BAD_REQUEST, "").into_response();
                };
                let bytes = field.bytes().await.unwrap_or_default().to_vec();
                image = Some((fname, bytes));
            }
            "type" => kind = field.text().await.unwrap_or_default(),
            "subfolder" => subfolder = field.text().await.unwrap_or_default(),
            "overwrite" => {
                overwrite = matches!(
                    field.text().await.unwrap_or_default().as_str(),
                    "true" | "1"
                )
            }
            _ => {}
        }
    }
    let Some((fname, bytes)) = image else {
        return (StatusCode::BAD_REQUEST, "").into_response();
    };
    let mut files = st.files.lock().unwrap();
    let mut final_name = fname.clone();
    let (stem, ext) = match fname.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (fname.clone(), String::new()),
    };
    let mut i = 1;
    if !overwrite {
        while files
            .get(&(kind.clone(), subfolder.clone(), final_name.clone()))
            .is_some_and(|existing| *existing != bytes)
        {
            final_name = format!("{stem} ({i}){ext}");
            i += 1;
        }
    }
    files.insert(
        (kind.clone(), subfolder.clone(), final_name.clone()),
        Bytes::from(bytes),
    );
    axum::Json(json!({"name": final_name, "subfolder": subfolder, "type": kind})).into_response()
}

fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/plain; charset=utf-8")],
        "500 Internal Server Error\n\nServer got itself in trouble",
    )
        .into_response()
}

fn is_output_class(class: &str) -> bool {
    class.starts_with("Save") || class.starts_with("Preview") || class == "VHS_VideoCombine"
}

async fn post_prompt(State(st): State<Arc<Inner>>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    st.log
        .lock()
        .unwrap()
        .push(format!("prompt-body {}", String::from_utf8_lossy(&body)));
    let Some(prompt) = v.get("prompt") else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}})),
        )
            .into_response();
    };
    let Some(prompt) = prompt.as_object() else {
        return server_error();
    };
    let (reject, accept_errors) = {
        let s = st.scenario.lock().unwrap();
        (s.reject.clone(), s.accept_node_errors.clone())
    };
    if let Some(body) = reject {
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    // LoadImage validation: the file must exist in the input directory (as in the capture).
    for (id, node) in prompt {
        if node.get("class_type").and_then(Value::as_str) == Some("LoadImage") {
            let name = node
                .pointer("/inputs/image")
                .and_then(Value::as_str)
                .unwrap_or("");
            let (sub, file) = name.rsplit_once('/').unwrap_or(("", name));
            let exists = st.files.lock().unwrap().contains_key(&(
                "input".to_string(),
                sub.to_string(),
                file.to_string(),
            ));
            if !exists {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
                        "node_errors": {id: {"errors": [{"type": "custom_validation_failed", "message": "Custom validation failed for node",
                            "details": format!("image - Invalid image file: {name}"), "extra_info": {"input_name": "image"}}],
                            "dependent_outputs": [], "class_type": "LoadImage"}}
                    })),
                )
                    .into_response();
            }
        }
    }
    let mut outputs: Vec<String> = prompt
        .iter()
        .filter(|(_, n)| {
            n.get("class_type")
                .and_then(Value::as_str)
                .is_some_and(is_output_class)
        })
        .map(|(k, _)| k.clone())
        .collect();
    if let Some(ne) = accept_errors.as_ref().and_then(Value::as_object) {
        let bad: BTreeSet<String> = ne
            .values()
            .flat_map(|e| {
                e.get("dependent_outputs")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        outputs.retain(|o| !bad.contains(o));
    }
    if outputs.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": {}})),
        )
            .into_response();
    }
    let id = v
        .get("prompt_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let number = {
        let mut n = st.number.lock().unwrap();
        *n += 1;
        *n
    };
    let job = Job {
        id: id.clone(),
        number,
        prompt: prompt.clone(),
        client_id: v
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        outputs,
    };
    st.pending.lock().unwrap().push_back(job);
    broadcast_status(&st);
    st.wake.notify_one();
    axum::Json(json!({"prompt_id": id, "number": number,
                      "node_errors": accept_errors.unwrap_or_else(|| json!({}))}))
    .into_response()
}

fn queue_remaining(st: &Inner) -> usize {
    st.pending.lock().unwrap().len() + usize::from(st.running.lock().unwrap().is_some())
}

async fn get_prompt(State(st): State<Arc<Inner>>) -> Response {
    axum::Json(json!({"exec_info": {"queue_remaining": queue_remaining(&st)}})).into_response()
}

fn queue_item(j: &Job) -> Value {
    let extra = match &j.client_id {
        Some(c) => json!({"client_id": c}),
        None => json!({}),
    };
    json!([j.number, j.id, j.prompt, extra, j.outputs])
}

async fn get_queue(State(st): State<Arc<Inner>>) -> Response {
    let running: Vec<Value> = st.running.lock().unwrap().iter().map(queue_item).collect();
    let pending: Vec<Value> = st.pending.lock().unwrap().iter().map(queue_item).collect();
    axum::Json(json!({"queue_running": running, "queue_pending": pending})).into_response()
}

async fn post_queue(State(st): State<Arc<Inner>>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    st.log.lock().unwrap().push(format!("queue-body {v}"));
    if v.get("clear").and_then(Value::as_bool) == Some(true) {
        st.pending.lock().unwrap().clear();
    }
    if let Some(ids) = v.get("delete").and_then(Value::as_array) {
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        st.pending
            .lock()
            .unwrap()
            .retain(|j| !ids.contains(&j.id.as_str()));
    }
    broadcast_status(&st);
    StatusCode::OK.into_response()
}

async fn get_history(State(st): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let h = st.history.lock().unwrap();
    match h.get(&id) {
        Some(e) => axum::Json(json!({ id: e })).into_response(),
        None => axum::Json(json!({})).into_response(),
    }
}

async fn view(State(st): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let filename = q.get("filename").cloned().unwrap_or_default();
    let kind = q.get("type").cloned().unwrap_or_else(|| "output".into());
    let subfolder = q.get("subfolder").cloned().unwrap_or_default();
    let file = st
        .files
        .lock()
        .unwrap()
        .get(&(kind, subfolder, filename.clone()))
        .cloned();
    let Some(file) = file else {
        if filename.starts_with('/') || filename.contains("..") {
            return (StatusCode::BAD_REQUEST, "").into_response();
        }
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let (chunk, delay) = {
        let s = st.scenario.lock().unwrap();
        (s.view_chunk.max(1), s.view_delay)
    };
    let content_type = match filename.rsplit('.').next().unwrap_or("") {
        "webp" => "image/webp",
        "png" => "image/png",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    };
    let len = file.len();
    let stream = futures_util::stream::unfold(0usize, move |off| {
        let file = file.clone();
        async move {
            if off >= file.len() {
                return None;
            }
            if off > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let end = (off + chunk).min(file.len());
            Some((Ok::<_, std::io::Error>(file.slice(off..end)), end))
        }
    });
    let mut headers = HeaderMap::new();
    headers.insert("content-type", content_type.parse().unwrap());
    headers.insert("content-length", len.to_string().parse().unwrap());
    (headers, Body::from_stream(stream)).into_response()
}

async fn interrupt(State(st): State<Arc<Inner>>, body: axum::body::Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    st.log.lock().unwrap().push(format!("interrupt-body {v}"));
    let running = st.running.lock().unwrap().as_ref().map(|j| j.id.clone());
    match (v.get("prompt_id").and_then(Value::as_str), running) {
        (Some(id), Some(r)) if id == r => *st.interrupt.lock().unwrap() = Some(r),
        (None, Some(r)) => *st.interrupt.lock().unwrap() = Some(r),
        _ => {}
    }
    StatusCode::OK.into_response()
}

async fn ws_handler(
    State(st): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    up: WebSocketUpgrade,
) -> Response {
    let cid = q
        .get("clientId")
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    up.on_upgrade(move |socket| ws_conn(st, cid, socket))
}

/// One websocket, with ComfyUI's bookkeeping: register under the client ID (replacing, not
/// closing, an older socket), and on close remove *whatever* is registered under that ID.
async fn ws_conn(st: Arc<Inner>, cid: String, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let seq = st.socket_seq.fetch_add(1, Ordering::SeqCst);
    let first = json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": queue_remaining(&st)}}, "sid": cid}});
    let _ = tx.send(Message::Text(first.to_string()));
    st.sockets
        .lock()
        .unwrap()
        .insert(cid.clone(), (seq, tx.clone()));
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    });
    let mut first_frame = true;
    while let Some(Ok(msg)) = stream.next().await {
        match msg {
            Message::Close(_) => break,
            Message::Text(t) if first_frame => {
                if let Ok(v) = serde_json::from_str::<Value>(&t) {
                    if v.get("type").and_then(Value::as_str) == Some("feature_flags") {
                        let _ = tx.send(Message::Text(
                            json!({"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}}).to_string(),
                        ));
                    }
                }
            }
            _ => {}
        }
        first_frame = false;
    }
    // The flaw (ComfyUI#16010): pop by client ID, even if a newer socket owns the entry.
    st.sockets.lock().unwrap().remove(&cid);
    drop(tx);
    writer.abort();
}

fn send_to(st: &Inner, cid: Option<&str>, msg: Value) {
    let Some(cid) = cid else { return };
    if let Some((_, tx)) = st.sockets.lock().unwrap().get(cid) {
        let _ = tx.send(Message::Text(msg.to_string()));
    }
}

fn send_binary(st: &Inner, cid: Option<&str>) {
    let Some(cid) = cid else { return };
    if let Some((_, tx)) = st.sockets.lock().unwrap().get(cid) {
        let mut b = vec![0, 0, 0, 1, 0, 0, 0, 2];
        b.extend_from_slice(&fake_png(64));
        let _ = tx.send(Message::Binary(b));
    }
}

fn broadcast_status(st: &Inner) {
    let msg = json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": queue_remaining(st)}}}});
    for (_, tx) in st.sockets.lock().unwrap().values() {
        let _ = tx.send(Message::Text(msg.to_string()));
    }
}

fn close_client(st: &Inner, cid: Option<&str>) {
    let Some(cid) = cid else { return };
    if let Some((_, tx)) = st.sockets.lock().unwrap().remove(cid) {
        let _ = tx.send(Message::Close(None));
    }
}

/// Node IDs in dependency order (inputs first).
fn topo(prompt: &Map<String, Value>, roots: &[String]) -> Vec<String> {
    fn visit(id: &str, p: &Map<String, Value>, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(id.to_string()) {
            return;
        }
        if let Some(inputs) = p
            .get(id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        {
            for v in inputs.values() {
                if let Some(src) = v.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
                    if v.as_array().map(Vec::len) == Some(2) && p.contains_key(src) {
                        visit(src, p, seen, out);
                    }
                }
            }
        }
        out.push(id.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(r, prompt, &mut seen, &mut out);
    }
    out
}

fn links(node: &Value) -> Vec<String> {
    node.get("inputs")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(|v| {
                    let a = v.as_array()?;
                    (a.len() == 2 && a[1].is_number()).then(|| a[0].as_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strip_meta(n: &Value) -> Value {
    let mut n = n.clone();
    if let Some(o) = n.as_object_mut() {
        o.remove("_meta");
    }
    n
}

/// Runs prompts one at a time, like ComfyUI's prompt worker.
async fn executor(st: Arc<Inner>) {
    loop {
        let job = loop {
            let hold = st.scenario.lock().unwrap().hold;
            if !hold {
                if let Some(j) = st.pending.lock().unwrap().pop_front() {
                    break j;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), st.wake.notified()).await;
        };
        *st.running.lock().unwrap() = Some(job.clone());
        run_job(&st, &job).await;
        *st.running.lock().unwrap() = None;
        *st.interrupt.lock().unwrap() = None;
        broadcast_status(&st);
        // The trailing `executing {node: null}` comes after history and status.
        send_to(
            &st,
            job.client_id.as_deref(),
            json!({"type": "executing", "data": {"node": null, "prompt_id": job.id}}),
        );
    }
}

async fn run_job(st: &Inner, job: &Job) {
    let sc = st.scenario.lock().unwrap().clone();
    let cid = job.client_id.as_deref();
    let id = job.id.clone();
    let p = &job.prompt;
    let mut messages: Vec<Value> = Vec::new();
    let mut emit = |st: &Inner, kind: &str, data: Value, record: bool| {
        if record {
            messages.push(json!([kind, data.clone()]));
        }
        send_to(st, cid, json!({"type": kind, "data": data}));
    };
    emit(
        st,
        "execution_start",
        json!({"prompt_id": id, "timestamp": now_ms()}),
        true,
    );

    // Classic cache: a node is cached when the last prompt had the same node (class + inputs)
    // under the same ID and all its inputs were cached too.
    let order = topo(p, &job.outputs);
    let (last_nodes, last_outputs) = st.last.lock().unwrap().clone();
    let mut cached: BTreeSet<String> = BTreeSet::new();
    for nid in &order {
        let same = last_nodes
            .get(nid)
            .is_some_and(|old| strip_meta(old) == strip_meta(&p[nid]));
        if same && links(&p[nid]).iter().all(|l| cached.contains(l)) {
            cached.insert(nid.clone());
        }
    }
    let cached_list: Vec<&String> = order.iter().filter(|n| cached.contains(*n)).collect();
    emit(
        st,
        "execution_cached",
        json!({"nodes": cached_list, "prompt_id": id, "timestamp": now_ms()}),
        true,
    );

    let to_run: Vec<&String> = order.iter().filter(|n| !cached.contains(*n)).collect();
    let class = |n: &str| {
        p.get(n)
            .and_then(|x| x.get("class_type"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let work = to_run
        .iter()
        .find(|n| class(n).contains("Sampler"))
        .or_else(|| to_run.iter().find(|n| !is_output_class(&class(n))))
        .or(to_run.first())
        .map(|s| s.to_string());
    let mut outputs: Map<String, Value> = Map::new();
    let mut executed: Vec<String> = Vec::new();
    let mut failure: Option<(&str, Value)> = None;
    'nodes: for nid in &to_run {
        let nid = nid.as_str();
        send_to(
            st,
            cid,
            json!({"type": "progress_state", "data": {"prompt_id": id, "nodes": {nid: {"value": 0, "max": 1, "state": "running", "node_id": nid, "prompt_id": id, "display_node_id": nid, "parent_node_id": null, "real_node_id": nid}}}}),
        );
        send_to(
            st,
            cid,
            json!({"type": "executing", "data": {"node": nid, "display_node": nid, "prompt_id": id}}),
        );
        if Some(nid) == work.as_deref() {
            let steps = sc.steps.max(1);
            // An absolute schedule, so the run takes exec_time and not exec_time plus the
            // timer's rounding per step (the benchmark subtracts exec_time).
            let begin = tokio::time::Instant::now();
            for i in 1..=steps {
                tokio::time::sleep_until(begin + sc.exec_time * i / steps).await;
                if st.interrupt.lock().unwrap().as_deref() == Some(id.as_str()) {
                    failure = Some((
                        "execution_interrupted",
                        json!({"prompt_id": id, "node_id": nid, "node_type": class(nid), "executed": executed, "timestamp": now_ms()}),
                    ));
                    break 'nodes;
                }
                send_to(
                    st,
                    cid,
                    json!({"type": "progress", "data": {"value": i, "max": steps, "prompt_id": id, "node": nid}}),
                );
                if sc.binary_previews {
                    send_binary(st, cid);
                }
                if sc.drop_ws_mid_run && i == steps.div_ceil(2) {
                    close_client(st, cid);
                }
            }
        }
        if sc.fail_node.as_deref() == Some(nid) {
            failure = Some((
                "execution_error",
                json!({"prompt_id": id, "node_id": nid, "node_type": class(nid), "executed": executed,
                "exception_message": "cannot identify image file '/srv/comfy/input/peer_corrupt.png'\n",
                "exception_type": "PIL.UnidentifiedImageError",
                "traceback": ["  File \"/srv/comfy/ComfyUI/execution.py\", line 496, in execute\n"],
                "current_inputs": {}, "current_outputs": [], "timestamp": now_ms()}),
            ));
            break;
        }
        executed.push(nid.to_string());
        if is_output_class(&class(nid)) {
            let ui = make_outputs(
                st,
                &sc,
                p,
                nid,
                job.outputs.first().map(String::as_str) == Some(nid),
            );
            send_to(
                st,
                cid,
                json!({"type": "executed", "data": {"node": nid, "display_node": nid, "output": ui, "prompt_id": id}}),
            );
            outputs.insert(nid.to_string(), ui);
        }
    }
    // Cached output nodes report their earlier files (and `executed` is re-sent for them).
    for nid in &job.outputs {
        if cached.contains(nid) {
            if let Some(ui) = last_outputs.get(nid) {
                send_to(
                    st,
                    cid,
                    json!({"type": "executed", "data": {"node": nid, "display_node": nid, "output": ui, "prompt_id": id}}),
                );
                outputs.insert(nid.clone(), ui.clone());
            }
        }
    }
    let (status_str, completed) = match failure {
        Some((kind, data)) => {
            messages.push(json!([kind, data.clone()]));
            send_to(st, cid, json!({"type": kind, "data": data}));
            outputs.clear();
            ("error", false)
        }
        None => {
            let data = json!({"prompt_id": id, "timestamp": now_ms()});
            messages.push(json!(["execution_success", data.clone()]));
            send_to(st, cid, json!({"type": "execution_success", "data": data}));
            ("success", true)
        }
    };
    if completed {
        let mut last = st.last.lock().unwrap();
        last.0 = p.clone();
        last.1 = outputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    } else {
        *st.last.lock().unwrap() = (Map::new(), HashMap::new());
    }
    let extra = match cid {
        Some(c) => json!({"client_id": c}),
        None => json!({}),
    };
    let meta: Map<String, Value> = outputs
        .keys()
        .map(|k| {
            (
                k.clone(),
                json!({"node_id": k, "display_node": k, "parent_node": null, "real_node_id": k}),
            )
        })
        .collect();
    st.history.lock().unwrap().insert(
        id.clone(),
        json!({
            "prompt": [job.number, id, p, extra, job.outputs],
            "outputs": outputs,
            "status": {"status_str": status_str, "completed": completed, "messages": messages},
            "meta": meta,
        }),
    );
}

/// Writes an output node's files into the fake's output store and returns its `ui` dict.
fn make_outputs(
    st: &Inner,
    sc: &Scenario,
    p: &Map<String, Value>,
    nid: &str,
    first: bool,
) -> Value {
    let node = &p[nid];
    let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
    let files: Vec<FakeFile> = match (&sc.outputs, first) {
        (Some(f), true) => f.clone(),
        _ => {
            let prefix = node
                .pointer("/inputs/filename_prefix")
                .and_then(Value::as_str)
                .unwrap_or("ComfyUI");
            let n = st.counter.fetch_add(1, Ordering::SeqCst) + 1;
            let (sub, prefix) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            let (ext, body) = if class == "SaveAnimatedWEBP" {
                ("webp", fake_webp(3524))
            } else {
                ("png", fake_png(1987))
            };
            let temp = class.starts_with("Preview");
            vec![FakeFile {
                key: "images".into(),
                filename: if temp {
                    format!("ComfyUI_temp_abcde_{n:05}_.{ext}")
                } else {
                    format!("{prefix}_{n:05}_.{ext}")
                },
                subfolder: sub.into(),
                kind: if temp { "temp" } else { "output" }.into(),
                body: Bytes::from(body),
            }]
        }
    };
    let mut ui = Map::new();
    for f in &files {
        st.files.lock().unwrap().insert(
            (f.kind.clone(), f.subfolder.clone(), f.filename.clone()),
            f.body.clone(),
        );
        ui.entry(f.key.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!({"filename": f.filename, "subfolder": f.subfolder, "type": f.kind}));
    }
    if class == "SaveAnimatedWEBP" {
        ui.insert("animated".into(), json!([true]));
    }
    Value::Object(ui)
}
