//! An in-process fake RunPod serverless endpoint (axum) for fault injection.
//!
//! It follows the shapes in ../shared/fixtures/captures and the RunPod docs: `POST /run` answers
//! `{"id","status":"IN_QUEUE"}`, `GET /status/{id}` moves through IN_QUEUE → IN_PROGRESS → a final
//! status on a clock, `POST /runsync` waits for the job, `POST /cancel/{id}` cancels. A [`Script`]
//! says how the job ends and which faults to inject (HTTP errors with `Retry-After`, connections
//! that break mid-body). Every request is recorded for assertions.
//!
//! Also used by `examples/fake_runpod.rs` (the benchmark server) through `#[path]`.

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the job ends.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// COMPLETED with this raw JSON as `output`.
    Completed(Arc<String>),
    /// COMPLETED with no `output` key (result upload rejected).
    CompletedNoOutput,
    /// FAILED with this `error` value.
    Failed(Value),
    TimedOut,
    /// Never leaves IN_QUEUE.
    StuckInQueue,
}

/// An injected fault, consumed one per matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this HTTP status (with `Retry-After` when given) and a small body.
    Http(u16, Option<&'static str>),
    /// Send headers and half a body, then break the connection.
    Reset,
}

/// What the fake does.
#[derive(Clone, Debug)]
pub struct Script {
    pub queue_for: Duration,
    pub run_for: Duration,
    /// Each job runs `run_for` plus a random extra in `0..run_jitter`, so that a benchmark does not
    /// measure a lucky (or unlucky) fixed phase between the poll clock and the job clock.
    pub run_jitter: Duration,
    pub outcome: Outcome,
    /// Require `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Faults for `/status` requests, in order.
    pub status_faults: Vec<Fault>,
    /// Faults for `/run` and `/runsync` requests, in order.
    pub submit_faults: Vec<Fault>,
    /// `/runsync` answers at once with a non-final status (its `wait` ran out).
    pub runsync_returns_early: bool,
    /// `/run` and `/runsync` answer only after this long (the job exists from the start).
    pub submit_delay: Duration,
    /// On a 401, echo the Authorization header back in the body (to prove comfyctl scrubs it).
    pub echo_auth_on_401: bool,
    /// `/status` answers 404 once the job is final (result retention ran out).
    pub expire_when_final: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            queue_for: Duration::from_millis(100),
            run_for: Duration::from_millis(200),
            run_jitter: Duration::ZERO,
            outcome: Outcome::Completed(Arc::new(String::from(r#"{"images":[]}"#))),
            api_key: None,
            status_faults: Vec::new(),
            submit_faults: Vec::new(),
            runsync_returns_early: false,
            submit_delay: Duration::ZERO,
            echo_auth_on_401: false,
            expire_when_final: false,
        }
    }
}

impl Script {
    fn job_run_for(&self) -> Duration {
        if self.run_jitter.is_zero() {
            self.run_for
        } else {
            use rand::Rng;
            self.run_for + self.run_jitter.mul_f64(rand::thread_rng().gen::<f64>())
        }
    }
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub auth: Option<String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug)]
struct Job {
    created: Instant,
    /// This job's run time (`run_for` + jitter).
    run_for: Duration,
    /// When the job reaches its final status, as wall-clock time (for the benchmark).
    final_at: SystemTime,
    cancelled: bool,
}

#[derive(Debug)]
struct State {
    script: Script,
    requests: Vec<Recorded>,
    jobs: HashMap<String, Job>,
    next: u64,
}

/// A running fake. The server lives as long as the process (tests are short).
#[derive(Clone)]
pub struct FakeRunpod {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeRunpod {
    pub fn start(script: Script) -> Self {
        Self::start_on("127.0.0.1:0", script)
    }

    pub fn start_on(bind: &str, script: Script) -> Self {
        let state = Arc::new(Mutex::new(State {
            script,
            requests: Vec::new(),
            jobs: HashMap::new(),
            next: 0,
        }));
        let st = state.clone();
        let listener = std::net::TcpListener::bind(bind).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app =
                    Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| {
                        handle(st.clone(), m, u, h, b)
                    });
                axum::serve(listener, app).await.expect("serve");
            });
        });
        FakeRunpod { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests whose path starts with `prefix` (e.g. "/run", "/status/", "/cancel/").
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// Wall-clock milliseconds at which each job reached its final status.
    pub fn final_times(&self) -> HashMap<String, u128> {
        self.state
            .lock()
            .unwrap()
            .jobs
            .iter()
            .map(|(k, j)| {
                (
                    k.clone(),
                    j.final_at.duration_since(UNIX_EPOCH).unwrap().as_millis(),
                )
            })
            .collect()
    }

    /// Adds a job as if it had been submitted earlier (for `status`/`cancel` tests).
    pub fn add_job(&self, id: &str) {
        let mut s = self.state.lock().unwrap();
        let run_for = s.script.job_run_for();
        let total = s.script.queue_for + run_for;
        s.jobs.insert(
            id.to_string(),
            Job {
                created: Instant::now(),
                run_for,
                final_at: SystemTime::now() + total,
                cancelled: false,
            },
        );
    }
}

fn json_resp(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn fault_resp(f: &Fault) -> Response {
    match f {
        Fault::Http(code, retry_after) => {
            let mut r = json_resp(*code, json!({"error": format!("injected {code}")}));
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert("retry-after", ra.parse().expect("header"));
            }
            r
        }
        Fault::Reset => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"id\":\"x\",\"sta")),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ];
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("content-length", "200")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap()
        }
    }
}

/// The job's status body at `now`.
fn job_body(script: &Script, id: &str, job: &Job) -> (String, bool) {
    let e = job.created.elapsed();
    let delay = script.queue_for.as_millis();
    let exec = job.run_for.as_millis();
    if job.cancelled {
        return (
            json!({"id": id, "status": "CANCELLED", "delayTime": delay}).to_string(),
            true,
        );
    }
    let in_queue = matches!(script.outcome, Outcome::StuckInQueue) || e < script.queue_for;
    if in_queue {
        return (json!({"id": id, "status": "IN_QUEUE"}).to_string(), false);
    }
    if e < script.queue_for + job.run_for {
        return (
            json!({"id": id, "status": "IN_PROGRESS", "delayTime": delay, "workerId": "fake-worker-1"})
                .to_string(),
            false,
        );
    }
    let body = match &script.outcome {
        Outcome::Completed(raw) => {
            let mut s = String::with_capacity(raw.len() + 200);
            s.push_str(&format!(
                r#"{{"delayTime":{delay},"executionTime":{exec},"id":"{id}","workerId":"fake-worker-1","status":"COMPLETED","output":"#
            ));
            s.push_str(raw);
            s.push('}');
            s
        }
        Outcome::CompletedNoOutput => json!({"delayTime": delay, "executionTime": exec, "id": id, "status": "COMPLETED"}).to_string(),
        Outcome::Failed(err) => json!({"delayTime": delay, "executionTime": exec, "id": id, "status": "FAILED", "error": err}).to_string(),
        Outcome::TimedOut => json!({"delayTime": delay, "executionTime": exec, "id": id, "status": "TIMED_OUT"}).to_string(),
        Outcome::StuckInQueue => unreachable!(),
    };
    (body, true)
}

/// What the synchronous part of a request decided.
enum Next {
    Respond(Response),
    /// `/runsync`: wait for this job to finish, at most `wait` (RunPod's `?wait=ms`).
    WaitFor(String, Script, Option<Duration>),
}

async fn handle(
    state: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let submit = method == Method::POST
        && (uri.path().ends_with("/run") || uri.path().ends_with("/runsync"));
    let delay = state.lock().unwrap().script.submit_delay;
    let next = decide(&state, method, uri, headers, body);
    if submit && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match next {
        Next::Respond(r) => r,
        Next::WaitFor(id, script, wait) => {
            let t0 = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let (b, fin) = {
                    let s = state.lock().unwrap();
                    job_body(&script, &id, &s.jobs[&id])
                };
                if fin || wait.is_some_and(|w| t0.elapsed() >= w) {
                    return ([("content-type", "application/json")], b).into_response();
                }
            }
        }
    }
}

fn decide(
    state: &Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Next {
    let r = decide_inner(state, method, uri.clone(), headers, body);
    match r
        .headers()
        .get("x-fake-wait-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => {
            let script = state.lock().unwrap().script.clone();
            let wait = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("wait="))
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis);
            Next::WaitFor(id.to_string(), script, wait)
        }
        None => Next::Respond(r),
    }
}

fn decide_inner(
    state: &Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        auth: auth.clone(),
        body: body.to_vec(),
    });
    if let Some(key) = &s.script.api_key {
        if auth.as_deref() != Some(&format!("Bearer {key}")) {
            let msg = if s.script.echo_auth_on_401 {
                format!("invalid key in header: {}", auth.unwrap_or_default())
            } else {
                "Unauthorized".to_string()
            };
            return json_resp(401, json!({"error": msg}));
        }
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["run"]) | ("POST", ["runsync"]) => {
            if !s.script.submit_faults.is_empty() {
                let f = s.script.submit_faults.remove(0);
                return fault_resp(&f);
            }
            let req: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return json_resp(400, json!({"error": "invalid JSON"})),
            };
            if !req.get("input").is_some_and(Value::is_object) {
                return json_resp(400, json!({"error": "input is required"}));
            }
            s.next += 1;
            let id = format!("fake-{:04}-e1", s.next);
            let run_for = s.script.job_run_for();
            let total = s.script.queue_for + run_for;
            s.jobs.insert(
                id.clone(),
                Job {
                    created: Instant::now(),
                    run_for,
                    final_at: SystemTime::now() + total,
                    cancelled: false,
                },
            );
            if segs[0] == "run" {
                return json_resp(200, json!({"id": id, "status": "IN_QUEUE"}));
            }
            if s.script.runsync_returns_early {
                return json_resp(200, json!({"id": id, "status": "IN_PROGRESS"}));
            }
            // Marker picked up by `decide`: wait for the job.
            let mut r = json_resp(202, json!({}));
            r.headers_mut()
                .insert("x-fake-wait-for", id.parse().expect("header"));
            r
        }
        ("GET", ["status", id]) => {
            if !s.script.status_faults.is_empty() {
                let f = s.script.status_faults.remove(0);
                return fault_resp(&f);
            }
            let Some(job) = s.jobs.get(*id) else {
                return json_resp(404, json!({"error": "job not found"}));
            };
            let (b, fin) = job_body(&s.script, id, job);
            if fin && s.script.expire_when_final {
                return json_resp(404, json!({"error": "job not found"}));
            }
            ([("content-type", "application/json")], b).into_response()
        }
        ("POST", ["cancel", id]) => match s.jobs.get_mut(*id) {
            Some(job) => {
                job.cancelled = true;
                json_resp(200, json!({"id": id, "status": "CANCELLED"}))
            }
            None => json_resp(404, json!({"error": "job not found"})),
        },
        ("GET", ["_fake", "final_times"]) => {
            let m: serde_json::Map<String, Value> = s
                .jobs
                .iter()
                .map(|(k, j)| {
                    (
                        k.clone(),
                        json!(j.final_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64),
                    )
                })
                .collect();
            json_resp(200, Value::Object(m))
        }
        _ => json_resp(404, json!({"detail": "Not Found"})),
    }
}

/// A plain file server on another loopback port (stands in for S3 presigned URLs).
pub fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let files: Arc<HashMap<String, Vec<u8>>> =
        Arc::new(files.into_iter().map(|(p, b)| (p.to_string(), b)).collect());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                let files = files.clone();
                async move {
                    if headers.contains_key("authorization") {
                        return (StatusCode::BAD_REQUEST, "no Authorization header expected")
                            .into_response();
                    }
                    match files.get(uri.path()) {
                        Some(b) => b.clone().into_response(),
                        None => {
                            (StatusCode::FORBIDDEN, "<Error>AccessDenied</Error>").into_response()
                        }
                    }
                }
            });
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{addr}")
}
