//! `comfyctl send` straight to a ComfyUI server: upload → queue → follow → fetch → save.
//!
//! Design points (see ../shared/docs/protocols.md and findings.md for the evidence):
//! - **The websocket is a convenience, `/history` is the truth.** Progress comes from the socket,
//!   but `/history/{id}` is polled (with backoff, plus `/queue` for the position) whenever the
//!   socket is missing, closed or quiet. ComfyUI drops events for a client ID without a live
//!   socket and lets a second socket with the same ID steal (and later kill) the first one's feed;
//!   with the stable default client ID, concurrent runs do exactly that.
//! - **Our own `prompt_id`** (a UUID sent in `/prompt`) is known before the request goes out, so a
//!   Ctrl-C or `--timeout` at any moment can still cancel the right prompt: `POST /queue
//!   {"delete": [id]}` if pending, `POST /interrupt {"prompt_id": id}` if running — never a bare
//!   interrupt, which would kill someone else's job.
//! - Outputs are streamed from `/view` into temporary files in the output directory
//!   ([`crate::outputs`]), so memory stays flat for large videos and a cancelled run leaves no
//!   partial files.

mod history;
pub mod http;
mod ws;

use crate::cli::{SendArgs, DEFAULT_COMFY_URL};
use crate::error::{Error, Result};
use crate::outputs::{OutputDir, SavedFile};
use crate::report::{human_bytes, Reporter};
use crate::send::Prepared;
use history::{Outcome, OutputFile, QueueState};
use http::Client;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use ws::WsEvent;

/// ComfyUI's default request body limit (`--max-upload-size`, 100 MB); it applies to uploads and
/// to the `/prompt` JSON alike.
const DEFAULT_BODY_LIMIT: u64 = 100 * 1024 * 1024;
/// Timeout for the small control requests (`/prompt`, `/history`, `/queue`, ...).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive failed polls tolerated (a restarting proxy, a busy server) before giving up.
const POLL_FAILURE_GRACE: Duration = Duration::from_secs(30);

/// `comfyctl send` to a ComfyUI server.
pub async fn send(args: &SendArgs, prepared: Prepared, reporter: &Reporter) -> Result<i32> {
    let url = args.url.as_deref().unwrap_or(DEFAULT_COMFY_URL);
    let client = Client::new(url, &args.headers)?;
    let out = OutputDir::new(&args.out.output_dir, args.out.overwrite)?;
    let prompt_id = Arc::new(Mutex::new(None::<String>));
    let deadline = tokio::time::Instant::now() + args.timeout;
    let run = Run {
        args,
        prepared: &prepared,
        reporter,
        client: &client,
        out: &out,
        prompt_id: prompt_id.clone(),
        t0: Instant::now(),
    };
    let mut work = Box::pin(run.go());
    let cancel = tokio::select! {
        r = &mut work => {
            let summary = r?;
            return Ok(summary);
        }
        _ = tokio::time::sleep_until(deadline) => Cancel::Timeout,
        _ = shutdown_signal() => Cancel::Signal,
    };
    // Dropping the run deletes any half-written output file and closes the websocket.
    drop(work);
    reporter.finish();
    let id = prompt_id.lock().expect("not poisoned").clone();
    let what = match id {
        Some(id) => cancel_remote(&client, &id).await,
        None => "nothing had been queued yet".to_string(),
    };
    match cancel {
        Cancel::Timeout => Err(Error::Timeout(format!(
            "--timeout {} ran out; {what}",
            humantime::format_duration(args.timeout)
        ))),
        Cancel::Signal => Err(Error::Interrupted(what)),
    }
}

enum Cancel {
    Timeout,
    Signal,
}

/// Ctrl-C, or SIGTERM (cron, systemd, `timeout(1)`): both cancel the remote prompt.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Cancels our prompt on the server and says what was done. Checking `/queue` and then acting is
/// a race (the prompt may start in between), so a deleted-but-now-running prompt is interrupted.
async fn cancel_remote(client: &Client, id: &str) -> String {
    let t = Duration::from_secs(5);
    let interrupt_body = json!({"prompt_id": id});
    let delete_body = json!({"delete": [id]});
    let interrupt = || client.post_json_ok("interrupt", &interrupt_body, t);
    let delete = || client.post_json_ok("queue", &delete_body, t);
    match client.get_json("queue", t).await {
        Ok(q) => match history::queue_state(&q, id) {
            QueueState::Pending(_) => {
                if let Err(e) = delete().await {
                    return format!("could not remove prompt {id} from the queue: {e}");
                }
                let now_running = client
                    .get_json("queue", t)
                    .await
                    .map(|q| history::queue_state(&q, id) == QueueState::Running)
                    .unwrap_or(false);
                if now_running {
                    let _ = interrupt().await;
                    format!("prompt {id} had just started; interrupted it on the server")
                } else {
                    format!("removed prompt {id} from the server's queue")
                }
            }
            QueueState::Running => match interrupt().await {
                Ok(()) => format!("interrupted prompt {id} on the server"),
                Err(e) => format!("could not interrupt prompt {id}: {e}"),
            },
            QueueState::Absent => {
                format!("prompt {id} was no longer queued or running; nothing to cancel")
            }
        },
        Err(e) => {
            // Best effort: both requests are no-ops when they do not apply.
            let d = delete().await;
            let i = interrupt().await;
            if d.is_ok() || i.is_ok() {
                format!("asked the server to drop prompt {id} (GET /queue failed: {e})")
            } else {
                format!("could not cancel prompt {id}: {e}")
            }
        }
    }
}

/// One send, start to finish (without the cancel handling around it).
struct Run<'a> {
    args: &'a SendArgs,
    prepared: &'a Prepared,
    reporter: &'a Reporter,
    client: &'a Client,
    out: &'a OutputDir,
    prompt_id: Arc<Mutex<Option<String>>>,
    t0: Instant,
}

/// What the websocket told us about our prompt.
#[derive(Debug)]
struct Live {
    cached: BTreeSet<String>,
    started: Option<Instant>,
    /// When the websocket last said something about our prompt.
    last_heard: Option<Instant>,
    error: Option<Value>,
    current: String,
}

impl Run<'_> {
    async fn go(self) -> Result<i32> {
        let args = self.args;
        let reporter = self.reporter;
        let client = self.client;
        self.preflight().await?;

        // Reachability (and the server's argv, for the cache hint), the websocket and the
        // uploads at once. The socket must be open before queueing, or the first events are lost.
        let (stats, socket, uploaded) = tokio::join!(
            client.get_json("system_stats", CONTROL_TIMEOUT),
            ws::connect(client, &args.client_id, Duration::from_secs(5)),
            self.upload(),
        );
        let stats = match stats {
            Ok(s) => Some(s),
            // Unreachable or refusing us: say so (rather than whatever the upload ran into).
            Err(e @ Error::Auth(_)) => return Err(e),
            Err(e @ Error::Server(_)) if e.to_string().contains("cannot reach") => return Err(e),
            Err(e) => {
                reporter.debug(1, format!("GET /system_stats: {e}"));
                None
            }
        };
        if let Some(v) = stats
            .as_ref()
            .and_then(|s| s.pointer("/system/comfyui_version"))
            .and_then(Value::as_str)
        {
            reporter.debug(1, format!("{}: ComfyUI {v}", client.target()));
        }
        let mut ws_rx = match socket {
            Ok(rx) => Some(rx),
            Err(e) => {
                reporter.info(format!(
                    "note: websocket {} unavailable ({e}); following the prompt by polling /history",
                    client.ws_url(&args.client_id)
                ));
                None
            }
        };
        let names = uploaded?;
        let t_uploaded = Instant::now();
        let nodes = self.prepared.nodes_with(|img| {
            names
                .get(&img.upload_name)
                .cloned()
                .unwrap_or_else(|| img.upload_name.clone())
        });

        // Queue.
        let (prompt_id, number, warnings) = self.queue(&nodes).await?;
        let t_queued = Instant::now();
        reporter.status(format!("queued prompt {prompt_id}"));
        reporter.debug(1, format!("prompt {prompt_id} (number {number})"));

        // Follow.
        let mut live = Live {
            cached: BTreeSet::new(),
            started: None,
            last_heard: None,
            error: None,
            current: String::new(),
        };
        let (entry, via_ws) = self.follow(&prompt_id, &mut ws_rx, &mut live).await?;
        drop(ws_rx);
        let t_done = Instant::now();

        // What ran, what came from the cache.
        let mut cached = live.cached.clone();
        cached.extend(history::cached_nodes(&entry));
        let mut roots = history::outputs_to_execute(&entry);
        if roots.is_empty() {
            roots = nodes.keys().cloned().collect();
        }
        let needed = history::needed_nodes(&nodes, &roots);
        // What ran is what the outputs needed minus what came from the cache. (The socket's
        // `executing` messages can miss nodes when it connected late or went deaf.)
        let ran: Vec<String> = needed.difference(&cached).cloned().collect();

        match history::outcome(&entry) {
            Outcome::Success => {}
            Outcome::Error(d) => return Err(Error::Failed(self.describe_error(&d))),
            Outcome::Interrupted(d) => {
                let node = d.get("node_id").and_then(Value::as_str).unwrap_or("?");
                return Err(Error::Failed(format!(
                    "prompt {prompt_id} was interrupted on the server (at node {}); someone pressed Cancel or another client interrupted it",
                    self.node_label(node)
                )));
            }
            Outcome::Unknown(s) => {
                return Err(Error::Failed(match live.error.as_ref() {
                    Some(d) => self.describe_error(d),
                    None => format!("prompt {prompt_id} ended with status '{s}'"),
                }))
            }
        }

        let all_cached = ran.is_empty() && !cached.is_empty();
        let mut hints = Vec::new();
        if all_cached {
            reporter.info(format!(
                "all {} nodes cached; outputs are from an earlier run (change an input or use --random-seed for new ones)",
                cached.len()
            ));
        }
        if let Some(h) = cache_hint(stats.as_ref(), &ran, &nodes) {
            reporter.info(&h);
            hints.push(h);
        }

        // Fetch outputs.
        let files = history::output_files(&entry, args.include_temp);
        let skipped_temp = if args.include_temp {
            0
        } else {
            history::temp_count(&entry)
        };
        if files.is_empty() && !args.out.allow_empty {
            return Err(Error::Failed(format!(
                "prompt {prompt_id} finished but listed no output files{}; pass --allow-empty if that is expected",
                if skipped_temp > 0 {
                    format!(
                        " ({skipped_temp} temporary previews skipped; --include-temp saves them)"
                    )
                } else {
                    String::new()
                }
            )));
        }
        let mut saved = Vec::new();
        for f in &files {
            let s = self.download(f, all_cached).await?;
            reporter.info(format!(
                "saved {} ({}, {}, node {})",
                s.path.display(),
                human_bytes(s.bytes),
                s.format,
                self.node_label(&f.node)
            ));
            saved.push(s);
        }
        let t_end = Instant::now();
        reporter.finish();

        if !all_cached {
            reporter.info(format!(
                "cache: {} nodes ran, {} came from ComfyUI's cache",
                ran.len(),
                cached.len()
            ));
        }
        reporter.info(format!(
            "done in {:.1}s: {} file{} in {}",
            (t_end - self.t0).as_secs_f64(),
            saved.len(),
            if saved.len() == 1 { "" } else { "s" },
            self.out.path().display()
        ));

        if args.out.json {
            let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
            let queue_wait = live
                .started
                .map(|s| secs(s.saturating_duration_since(t_queued)));
            let run_s = secs(t_done.saturating_duration_since(live.started.unwrap_or(t_queued)));
            let summary = json!({
                "status": "success",
                "prompt_id": prompt_id,
                "client_id": args.client_id,
                "target": client.target(),
                "outputs": saved,
                "nodes": {
                    "executed": ran.len(),
                    "cached": cached.len(),
                    "executed_ids": ran,
                    "cached_ids": cached,
                },
                "all_cached": all_cached,
                "followed_by": if via_ws { "websocket" } else { "polling" },
                "hints": hints,
                "warnings": warnings,
                "timings": {
                    "upload_s": secs(t_uploaded - self.t0),
                    "queue_wait_s": queue_wait,
                    "run_s": run_s,
                    "download_s": secs(t_end - t_done),
                    "total_s": secs(t_end - self.t0),
                },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).expect("serializable")
            );
        }
        Ok(crate::error::exit::OK)
    }

    /// The schema check before queueing: against `--object-info FILE` when given, else the
    /// target server's live `/object_info`. On by default; skipped quietly when the server does
    /// not serve a schema (`--preflight` makes that a warning). The `image` inputs comfyctl is
    /// about to upload are left out of the enum check: their names are new to the server.
    async fn preflight(&self) -> Result<()> {
        let args = self.args;
        if args.no_preflight {
            return Ok(());
        }
        let nodes = self.prepared.nodes_with(|img| img.upload_name.clone());
        let file = &self.prepared.doc.file;
        let diags = match &args.object_info {
            Some(p) => {
                let schema = crate::schema::read_file(p)?;
                Some(crate::schema::check(&schema, &nodes, file))
            }
            None => {
                // The client's headers already carry --header values and URL credentials.
                let headers: Vec<String> = self
                    .client
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| v.to_str().ok().map(|v| format!("{k}: {v}")))
                    .collect();
                match crate::schema::preflight(&self.client.target(), &headers, &nodes, file).await
                {
                    Ok(d) => d,
                    Err(e) => {
                        self.reporter.debug(1, format!("preflight: {e}"));
                        None
                    }
                }
            }
        };
        let Some(diags) = diags else {
            let msg = "preflight check skipped: the server did not provide its node schema (/object_info)";
            if args.preflight {
                self.reporter.warn(msg);
            } else {
                self.reporter.debug(1, msg);
            }
            return Ok(());
        };
        let uploaded = |d: &crate::diagnostic::Diagnostic| {
            d.code == "value_not_in_list"
                && d.input.as_deref() == Some("image")
                && self
                    .prepared
                    .plan
                    .images
                    .iter()
                    .any(|i| d.node_id.as_deref() == Some(i.node.as_str()))
        };
        let (errors, rest): (Vec<_>, Vec<_>) = diags
            .into_iter()
            .filter(|d| !uploaded(d))
            .partition(|d| d.is_error());
        for d in rest
            .iter()
            .filter(|d| d.severity != crate::diagnostic::Severity::Info)
        {
            self.reporter.warn(d.to_string());
        }
        if !errors.is_empty() {
            return Err(Error::Rejected {
                target: self.client.target(),
                message: "the workflow does not match the server's nodes (preflight check; --no-preflight skips it)".into(),
                diagnostics: errors,
            });
        }
        Ok(())
    }

    /// Uploads every input image once; returns upload name → the name to put in the workflow.
    async fn upload(&self) -> Result<BTreeMap<String, String>> {
        let mut names = BTreeMap::new();
        for img in &self.prepared.plan.images {
            if names.contains_key(&img.upload_name) {
                continue;
            }
            let size = img.bytes.len() as u64;
            if size + 64 * 1024 > DEFAULT_BODY_LIMIT {
                return Err(Error::Usage(format!(
                    "{}: {} is over ComfyUI's default upload limit of {} (server flag --max-upload-size); shrink the image or raise the limit on the server",
                    img.path.display(),
                    human_bytes(size),
                    human_bytes(DEFAULT_BODY_LIMIT)
                )));
            }
            self.reporter
                .status(format!("uploading {}", img.path.display()));
            let part = reqwest::multipart::Part::bytes(img.bytes.clone())
                .file_name(img.upload_name.clone())
                .mime_str(img.media.mime())
                .map_err(|e| Error::Server(format!("building the upload: {e}")))?;
            let form = reqwest::multipart::Form::new()
                .part("image", part)
                .text("type", "input");
            let what = "POST /upload/image";
            let resp = self
                .client
                .http()
                .post(self.client.url("upload/image"))
                .multipart(form)
                .timeout(Duration::from_secs(300))
                .send()
                .await
                .map_err(|e| self.client.transport(what, e))?;
            if resp.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                return Err(Error::Usage(format!(
                    "{}: the server refused the upload as too large (HTTP 413); raise --max-upload-size on the server or send a smaller image",
                    img.path.display()
                )));
            }
            if !resp.status().is_success() {
                return Err(self.client.status_error(what, resp).await);
            }
            let v: Value = resp.json().await.map_err(|e| {
                Error::Server(format!("{what}: the answer is not the expected JSON ({e})"))
            })?;
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Server(format!("{what}: the answer has no 'name': {v}")))?;
            let sub = v.get("subfolder").and_then(Value::as_str).unwrap_or("");
            let server_name = if sub.is_empty() {
                name.to_string()
            } else {
                format!("{sub}/{name}")
            };
            self.reporter.debug(
                1,
                format!(
                    "uploaded {} ({}) as {server_name}",
                    img.path.display(),
                    human_bytes(size)
                ),
            );
            names.insert(img.upload_name.clone(), server_name);
        }
        Ok(names)
    }

    /// `POST /prompt`; returns the prompt ID and queue number.
    async fn queue(
        &self,
        nodes: &Map<String, Value>,
    ) -> Result<(String, Value, Vec<crate::diagnostic::Diagnostic>)> {
        let our_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "prompt": nodes,
            "client_id": self.args.client_id,
            "prompt_id": our_id,
        });
        let bytes = serde_json::to_vec(&body).expect("serializable");
        if bytes.len() as u64 > DEFAULT_BODY_LIMIT {
            return Err(Error::Usage(format!(
                "{}: the workflow is {} as JSON, over ComfyUI's default request limit of {}",
                self.prepared.doc.file,
                human_bytes(bytes.len() as u64),
                human_bytes(DEFAULT_BODY_LIMIT)
            )));
        }
        // From here on a cancel must look for this prompt on the server.
        *self.prompt_id.lock().expect("not poisoned") = Some(our_id.clone());
        let what = "POST /prompt";
        let resp = self
            .client
            .http()
            .post(self.client.url("prompt"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .timeout(CONTROL_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.client.transport(what, e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::BAD_REQUEST {
            let text = resp.text().await.unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(self.rejected(&v, &text));
        }
        if !status.is_success() {
            return Err(self.client.status_error(what, resp).await);
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| Error::Server(format!("{what}: the answer is not JSON ({e})")))?;
        let id = v
            .get("prompt_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Server(format!("{what}: the answer has no prompt_id: {v}")))?
            .to_string();
        *self.prompt_id.lock().expect("not poisoned") = Some(id.clone());
        let mut warnings = Vec::new();
        if let Some(ne) = v
            .get("node_errors")
            .filter(|n| n.as_object().is_some_and(|m| !m.is_empty()))
        {
            self.reporter.warn(
                "the server queued the prompt but rejected some output nodes; only the valid outputs will run:",
            );
            for d in history::node_error_diagnostics(ne, self.prepared, true) {
                self.reporter.warn(d.to_string());
                warnings.push(d);
            }
        }
        Ok((
            id,
            v.get("number").cloned().unwrap_or(Value::Null),
            warnings,
        ))
    }

    /// A 400 from `/prompt` as per-node diagnostics.
    fn rejected(&self, v: &Value, raw: &str) -> Error {
        let message = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("the server rejected the workflow")
            .to_string();
        let details = v
            .pointer("/error/details")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut diagnostics = v
            .get("node_errors")
            .map(|ne| history::node_error_diagnostics(ne, self.prepared, false))
            .unwrap_or_default();
        if diagnostics.is_empty() {
            let text = if v.is_null() {
                self.client.scrub(raw.trim())
            } else if details.is_empty() {
                message.clone()
            } else {
                format!("{message} ({details})")
            };
            diagnostics.push(
                crate::diagnostic::Diagnostic::error("server_rejected", text)
                    .file(self.prepared.doc.file.clone()),
            );
        }
        Error::Rejected {
            target: self.client.target(),
            message: format!("the server rejected the workflow: {message}"),
            diagnostics,
        }
    }

    /// Follows the prompt until its history entry exists. Returns the entry and whether the
    /// websocket saw the end (false: found by polling).
    async fn follow(
        &self,
        id: &str,
        ws_rx: &mut Option<mpsc::Receiver<WsEvent>>,
        live: &mut Live,
    ) -> Result<(Value, bool)> {
        enum Next {
            Ws(Option<WsEvent>),
            Poll,
        }
        let mut backoff = Duration::from_millis(250);
        let mut next_poll = tokio::time::Instant::now() + backoff;
        let mut poller = Poller::default();
        loop {
            let next = {
                let recv = async {
                    match ws_rx.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    ev = recv => Next::Ws(ev),
                    _ = tokio::time::sleep_until(next_poll) => Next::Poll,
                }
            };
            match next {
                Next::Ws(Some(WsEvent::Msg(v))) => {
                    if self.on_message(id, &v, live) {
                        // `executing {node: null}` is sent after the history write.
                        // A failed fetch here is retried by the polling below.
                        if let Ok(Some(e)) = self.history(id).await {
                            return Ok((e, true));
                        }
                        backoff = Duration::from_millis(100);
                        next_poll = tokio::time::Instant::now() + backoff;
                    }
                }
                Next::Ws(ev) => {
                    let reason = match ev {
                        Some(WsEvent::Closed(r)) => r,
                        _ => "connection ended".into(),
                    };
                    self.reporter.info(format!(
                        "note: the websocket closed ({reason}); following the prompt by polling /history"
                    ));
                    *ws_rx = None;
                    backoff = Duration::from_millis(100);
                    next_poll = tokio::time::Instant::now();
                }
                Next::Poll => {
                    if let Some(e) = self.poll(id, live, &mut poller).await? {
                        if ws_rx.is_some() {
                            self.reporter.debug(
                                1,
                                format!(
                                    "the websocket went quiet (another connection with client ID '{}'?); found the result in /history",
                                    self.args.client_id
                                ),
                            );
                        }
                        return Ok((e, false));
                    }
                    let ws_fresh = ws_rx.is_some()
                        && live
                            .last_heard
                            .is_some_and(|t| t.elapsed() < Duration::from_secs(3));
                    backoff = if ws_fresh {
                        Duration::from_secs(5)
                    } else {
                        (backoff * 2).min(Duration::from_secs(2))
                    };
                    next_poll = tokio::time::Instant::now() + backoff;
                }
            }
        }
    }

    /// Handles one websocket message; true when it says our prompt is over.
    fn on_message(&self, id: &str, v: &Value, live: &mut Live) -> bool {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        let d = v.get("data").unwrap_or(&Value::Null);
        // Only messages for *our* prompt count (the server is shared; `status` is global).
        if d.get("prompt_id").and_then(Value::as_str) != Some(id) {
            return false;
        }
        live.last_heard = Some(Instant::now());
        match kind {
            "execution_start" => {
                live.started.get_or_insert_with(Instant::now);
                self.reporter.status("running");
            }
            "execution_cached" => {
                live.started.get_or_insert_with(Instant::now);
                let nodes = history::ids(d.get("nodes"));
                if !nodes.is_empty() {
                    self.reporter
                        .debug(1, format!("{} nodes from the cache", nodes.len()));
                }
                live.cached.extend(nodes);
            }
            "executing" => match d.get("node").and_then(Value::as_str) {
                None => return true,
                Some(node) => {
                    live.started.get_or_insert_with(Instant::now);
                    live.current = self.node_label(node);
                    self.reporter.status(format!("running {}", live.current));
                }
            },
            "progress" => {
                let value = d.get("value").and_then(Value::as_u64).unwrap_or(0);
                let max = d.get("max").and_then(Value::as_u64).unwrap_or(0);
                if max > 0 {
                    self.reporter.progress(value, max);
                }
            }
            "executed" => {
                if let Some(node) = d.get("node").and_then(Value::as_str) {
                    self.reporter
                        .debug(2, format!("node {} produced output", self.node_label(node)));
                }
            }
            "execution_error" => live.error = Some(d.clone()),
            "execution_interrupted" => {
                self.reporter
                    .debug(1, "the server reports the prompt interrupted");
            }
            _ => {}
        }
        false
    }

    /// `GET /history/{id}`: the entry once the prompt is over.
    async fn history(&self, id: &str) -> Result<Option<Value>> {
        let h = self
            .client
            .get_json(&format!("history/{id}"), CONTROL_TIMEOUT)
            .await?;
        Ok(h.get(id).cloned())
    }

    /// One poll: history first (done?), then the queue (position, still there?). Transient
    /// failures are tolerated for [`POLL_FAILURE_GRACE`].
    async fn poll(&self, id: &str, live: &mut Live, p: &mut Poller) -> Result<Option<Value>> {
        enum Seen {
            Done(Value),
            Queue(QueueState),
        }
        let r = async {
            if let Some(e) = self.history(id).await? {
                return Ok(Seen::Done(e));
            }
            let q = self.client.get_json("queue", CONTROL_TIMEOUT).await?;
            Ok::<_, Error>(Seen::Queue(history::queue_state(&q, id)))
        }
        .await;
        let state = match r {
            Ok(Seen::Done(e)) => return Ok(Some(e)),
            Ok(Seen::Queue(q)) => {
                p.failing_since = None;
                q
            }
            Err(e @ Error::Auth(_)) => return Err(e),
            Err(e) => {
                let since = *p.failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= POLL_FAILURE_GRACE {
                    return Err(e);
                }
                self.reporter
                    .debug(1, format!("poll failed, retrying: {e}"));
                return Ok(None);
            }
        };
        match state {
            QueueState::Running => {
                p.absent = 0;
                if live.started.is_none() {
                    live.started = Some(Instant::now());
                }
                if live
                    .last_heard
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(3))
                {
                    self.reporter.status(if live.current.is_empty() {
                        "running".to_string()
                    } else {
                        format!("running {}", live.current)
                    });
                }
            }
            QueueState::Pending(n) => {
                p.absent = 0;
                self.reporter.status(format!("queued, position {n}"));
            }
            QueueState::Absent => {
                p.absent += 1;
                if p.absent >= 3 {
                    return Err(Error::Failed(format!(
                        "prompt {id} is gone from the server: not queued, not running and not in /history (another client deleted it, or ComfyUI restarted)"
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Streams one output file from `/view` into the output directory.
    async fn download(&self, f: &OutputFile, all_cached: bool) -> Result<SavedFile> {
        self.reporter.status(format!("downloading {}", f.filename));
        let what = format!("GET /view {}", f.filename);
        let mut resp = self
            .client
            .http()
            .get(self.client.url("view"))
            .query(&[
                ("filename", f.filename.as_str()),
                ("subfolder", f.subfolder.as_str()),
                ("type", f.kind.as_str()),
            ])
            .send()
            .await
            .map_err(|e| self.client.transport(&what, e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            let why = if all_cached {
                "; every node came from ComfyUI's cache, so these are an earlier run's files, and the server no longer has them. Run again with --random-seed (or change any input) to make new ones"
            } else {
                "; the server deleted it before it could be downloaded"
            };
            return Err(Error::Failed(format!(
                "output '{}' of node {} is not on the server (GET /view answered 404){why}",
                show_path(&f.subfolder, &f.filename),
                self.node_label(&f.node)
            )));
        }
        if !resp.status().is_success() {
            return Err(self.client.status_error(&what, resp).await);
        }
        let mut file = self.out.create(&f.filename, Some(&f.node))?;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.client.transport(&what, e))?
        {
            file.write_chunk(&chunk)?;
        }
        file.finish()
    }

    /// `execution_error` data as one readable message.
    fn describe_error(&self, d: &Value) -> String {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        let node = s("node_id");
        let mut msg = format!(
            "node {} failed on the server: {}: {}",
            self.node_label(node),
            if s("exception_type").is_empty() {
                "error"
            } else {
                s("exception_type")
            },
            s("exception_message").trim()
        );
        if self.reporter.verbose() >= 1 {
            if let Some(tb) = d.get("traceback").and_then(Value::as_array) {
                msg.push_str("\ntraceback:\n");
                for l in tb.iter().filter_map(Value::as_str) {
                    msg.push_str(l);
                }
            }
        } else {
            msg.push_str(" (-v shows the server's traceback)");
        }
        msg
    }

    /// `ksampler_1 "KSampler" (KSampler)`, or the bare ID.
    fn node_label(&self, id: &str) -> String {
        let mut s = id.to_string();
        if let Some(orig) = self.prepared.original_id(id).filter(|o| *o != id) {
            s.push_str(&format!(" [was {orig}]"));
        }
        match (self.prepared.title(id), self.prepared.class_type(id)) {
            (Some(t), Some(c)) if t != c => s.push_str(&format!(" \"{t}\" ({c})")),
            (_, Some(c)) => s.push_str(&format!(" ({c})")),
            _ => {}
        }
        s
    }
}

#[derive(Default)]
struct Poller {
    failing_since: Option<Instant>,
    absent: u32,
}

fn show_path(sub: &str, name: &str) -> String {
    if sub.is_empty() {
        name.to_string()
    } else {
        format!("{sub}/{name}")
    }
}

/// When loader nodes had to run again on a server with ComfyUI's default ("classic") cache, say
/// why and what fixes it — on the server side. The classic cache keeps only the most recent
/// prompt's results, so any other prompt in between evicts the loaded models.
fn cache_hint(stats: Option<&Value>, ran: &[String], nodes: &Map<String, Value>) -> Option<String> {
    let argv: Vec<&str> = stats?
        .pointer("/system/argv")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let custom = argv.iter().any(|a| {
        [
            "--cache-lru",
            "--cache-ram",
            "--cache-none",
            "--cache-score",
        ]
        .iter()
        .any(|f| a.starts_with(f))
    });
    if custom {
        return None;
    }
    let loaders: Vec<String> = ran
        .iter()
        .filter_map(|id| {
            let class = nodes.get(id)?.get("class_type")?.as_str()?;
            (class.contains("Loader") || class.contains("ModelLoad"))
                .then(|| format!("{id} ({class})"))
        })
        .collect();
    if loaders.is_empty() {
        return None;
    }
    Some(format!(
        "hint: loader nodes ran ({}), so their models were loaded from disk. This server runs ComfyUI's default cache, which keeps only the most recent prompt's results: any other prompt in between (or a restart) evicts them. To keep them between different workflows, start ComfyUI with --cache-lru 10 (keep the last 10 results) or --cache-ram.",
        loaders.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_only_for_default_cache_and_loaders() {
        let nodes = json!({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
                           "2": {"class_type": "KSampler", "inputs": {}}});
        let nodes = nodes.as_object().unwrap();
        let stats = json!({"system": {"argv": ["main.py", "--cpu"]}});
        let ran = vec!["1".to_string(), "2".to_string()];
        let h = cache_hint(Some(&stats), &ran, nodes).unwrap();
        assert!(
            h.contains("--cache-lru") && h.contains("1 (CheckpointLoaderSimple)"),
            "{h}"
        );
        let lru = json!({"system": {"argv": ["main.py", "--cache-lru", "8"]}});
        assert!(cache_hint(Some(&lru), &ran, nodes).is_none());
        assert!(cache_hint(Some(&stats), &["2".to_string()], nodes).is_none());
        assert!(cache_hint(None, &ran, nodes).is_none());
    }
}
