//! A ComfyUI server as a [`Target`]: upload → queue → follow → list outputs → fetch, and cancel.
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
//!   interrupt, which would kill someone else's job. The same ID lets `status` attach later.
//! - Outputs are streamed from `/view` through [`crate::outputs`], so memory stays flat for large
//!   videos and a cancelled run leaves no partial files.

mod history;
pub mod http;
mod ws;

use crate::engine::{Event, Events, OutputRef, Pending, Target};
use crate::error::{Error, Result};
use crate::job::Prepared;
use crate::net::{self, NetError, NetKind};
use crate::outputs::{Body, SaveError};
use crate::report::human_bytes;
use crate::result::{secs, JobResult, NodeCounts, TargetInfo};
use crate::schema::Schema;
use crate::settings::{ComfyServer, Preflight};
use history::{Outcome, OutputFile, QueueState};
use http::Client;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
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

/// A ComfyUI server, as the engine drives it.
#[derive(Debug)]
pub struct ComfyTarget {
    client: Client,
    client_id: String,
    include_temp: bool,
    object_info: Option<PathBuf>,
    verbose: bool,
    /// The flags `status` needs to reach this server again (for printed commands).
    refetch_dir: String,
    /// Follow prompts on the websocket (else by polling `/history` alone: many prompts of one
    /// run at once under one client ID would steal each other's events).
    websocket: bool,
    /// Images already uploaded by this run (content name → server name): each once.
    uploaded: std::sync::Mutex<BTreeMap<String, String>>,
}

impl ComfyTarget {
    pub fn new(
        server: ComfyServer,
        client_id: &str,
        include_temp: bool,
        object_info: Option<PathBuf>,
        verbose: u8,
        out_dir: &std::path::Path,
    ) -> Result<Self> {
        Ok(ComfyTarget {
            client: Client::new(server)?,
            client_id: client_id.to_string(),
            include_temp,
            object_info,
            verbose: verbose >= 1,
            refetch_dir: crate::redacted::shell_quote(&out_dir.display().to_string()),
            websocket: true,
            uploaded: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Follows prompts by polling `/history` only (for runs with many prompts at once).
    pub fn without_websocket(mut self) -> Self {
        self.websocket = false;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// A queued prompt being followed.
pub struct Remote {
    id: String,
    ws: Option<mpsc::Receiver<WsEvent>>,
    stats: Stats,
    /// When it was queued (`None` when attached to an existing prompt).
    queued: Option<Instant>,
    /// The node map that was sent (empty when attached: then the history's own prompt is used).
    nodes: Map<String, Value>,
}

/// The server's `/system_stats`: fetched alongside a submit, or already at hand.
enum Stats {
    Pending(tokio::task::JoinHandle<Result<Value>>),
    Ready(Option<Value>),
}

impl Stats {
    /// The answer, when the server gave one within a second more.
    async fn get(self, ev: &dyn Events) -> Option<Value> {
        match self {
            Stats::Ready(v) => v,
            Stats::Pending(h) => match tokio::time::timeout(Duration::from_secs(1), h).await {
                Ok(Ok(Ok(v))) => {
                    if let Some(ver) = v.pointer("/system/comfyui_version").and_then(Value::as_str)
                    {
                        ev.emit(Event::Note(
                            1,
                            format!("ComfyUI {}", crate::redacted::escape_controls(ver)),
                        ));
                    }
                    Some(v)
                }
                Ok(Ok(Err(e))) => {
                    ev.emit(Event::Note(1, format!("GET /system_stats: {e}")));
                    None
                }
                _ => None,
            },
        }
    }
}

/// A prompt that finished successfully.
pub struct Finished {
    files: Vec<OutputFile>,
    skipped_temp: usize,
    all_cached: bool,
}

/// How messages name a node: with the job at hand, by normalized ID, original ID, title, class.
struct Labels<'a>(Option<&'a Prepared>);

impl Labels<'_> {
    fn label(&self, id: &str) -> String {
        match self.0 {
            Some(p) => p.node_label(id),
            None => crate::redacted::escape_controls(id),
        }
    }
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

impl Target for ComfyTarget {
    type Remote = Remote;
    type Finished = Finished;

    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "comfyui",
            url: self.client.target(),
            endpoint: None,
        }
    }

    /// The schema to check against before queueing, without costing the happy path a request:
    /// `--object-info FILE`; else with `--preflight` the server's live `/object_info`; else
    /// (the default) the copy `comfyctl schema pull` saved for this server, if any. The server
    /// validates at `POST /prompt` anyway, and a rejection there fetches the live schema to
    /// enrich its diagnostics ([`ComfyTarget::enrich`]); a live `/object_info` costs tens of
    /// milliseconds on every call, as ComfyUI builds it afresh.
    async fn schema(&self, policy: Preflight, ev: &dyn Events) -> Result<Option<Schema>> {
        if let Some(p) = &self.object_info {
            return crate::schema::read_file(p).map(Some);
        }
        if policy != Preflight::On {
            let cached = crate::schema::cached(&self.client.server);
            if cached.is_some() {
                ev.emit(Event::Note(
                    1,
                    "preflight: using the schema saved by 'comfyctl schema pull' for this server"
                        .into(),
                ));
            }
            return Ok(cached);
        }
        match crate::schema::fetch(&self.client.server).await {
            Ok(s) => Ok(Some(s)),
            // Unreachable or refusing us: sending would fail the same way; say so now.
            Err(e @ Error::Auth(_)) => Err(e),
            Err(Error::Net(e)) if e.kind == NetKind::Unreachable => Err(self.unreachable(e)),
            Err(e) => {
                ev.emit(Event::Warn(format!(
                    "preflight check skipped: the server did not provide its node schema (/object_info): {e}"
                )));
                Ok(None)
            }
        }
    }

    async fn submit(&self, job: &Prepared, ev: &dyn Events, r: &mut JobResult) -> Result<Remote> {
        let t0 = Instant::now();
        // Reachability (and the server's argv, for the cache hint), the websocket and the
        // uploads at once. The socket must be open before queueing, or the first events are lost.
        let socket = async {
            if self.websocket {
                ws::connect(&self.client, &self.client_id, Duration::from_secs(5)).await
            } else {
                Err("not used: this run follows its prompts by polling /history".to_string())
            }
        };
        // `/system_stats` (the server's argv, for the cache hint after the run) is not on the
        // way to `POST /prompt`: a server builds it in 5-10 ms, as long as the rest of a cached
        // send. It runs alongside and is awaited when the prompt has ended.
        let client = self.client.clone();
        let stats = Stats::Pending(tokio::spawn(async move {
            client.get_json("system_stats", CONTROL_TIMEOUT).await
        }));
        let (socket, uploaded) = tokio::join!(socket, self.upload(job, ev));
        let ws = match socket {
            Ok(rx) => Some(rx),
            Err(_) if !self.websocket => None,
            Err(e) => {
                ev.emit(Event::Note(
                    0,
                    format!(
                        "note: websocket {} unavailable ({e}); following the prompt by polling /history",
                        crate::redacted::display_url(self.client.server.ws_url(&self.client_id).as_str())
                    ),
                ));
                None
            }
        };
        let names = uploaded?;
        if !job.plan.images.is_empty() {
            r.timings.upload_s = Some(secs(t0.elapsed()));
        }
        let nodes = job.nodes_with(|img| {
            names
                .get(&img.upload_name)
                .cloned()
                .unwrap_or_else(|| img.upload_name.clone())
        });
        let t_submit = Instant::now();
        let (id, number) = self.queue(&nodes, job, ev, r).await?;
        r.timings.submit_s = Some(secs(t_submit.elapsed()));
        ev.emit(Event::Queued {
            position: None,
            detail: format!("queued prompt {id}"),
        });
        ev.emit(Event::Note(1, format!("prompt {id} (number {number})")));
        Ok(Remote {
            id,
            ws,
            stats,
            queued: Some(Instant::now()),
            nodes,
        })
    }

    /// A prompt queued earlier under a known ID: finished (in `/history`), or still queued or
    /// running (then followed by polling, since its events went to whichever socket was open).
    async fn attach(&self, id: &str, _ev: &dyn Events, r: &mut JobResult) -> Result<Remote> {
        r.job_id = Some(id.to_string());
        let in_history = self
            .client
            .get_json(&format!("history/{}", encode(id)), CONTROL_TIMEOUT)
            .await?
            .get(id)
            .is_some();
        if !in_history {
            let q = self.client.get_json("queue", CONTROL_TIMEOUT).await?;
            if history::queue_state(&q, id) == QueueState::Absent {
                return Err(Error::NotFound(format!(
                    "no prompt {} on {}: not queued, not running and not in /history (the ID is wrong, the server restarted, or its history was cleared)",
                    crate::redacted::escape_controls(id),
                    self.client.target()
                )));
            }
        }
        let stats = Stats::Ready(
            self.client
                .get_json("system_stats", CONTROL_TIMEOUT)
                .await
                .ok(),
        );
        Ok(Remote {
            id: id.to_string(),
            ws: None,
            stats,
            queued: None,
            nodes: Map::new(),
        })
    }

    async fn peek(
        &self,
        remote: &mut Remote,
        _ev: &dyn Events,
        _r: &mut JobResult,
    ) -> Result<Option<Pending>> {
        if self.history(&remote.id).await?.is_some() {
            return Ok(None);
        }
        let q = self.client.get_json("queue", CONTROL_TIMEOUT).await?;
        Ok(Some(match history::queue_state(&q, &remote.id) {
            QueueState::Pending(n) => Pending {
                running: false,
                detail: format!("queued, position {n}"),
            },
            QueueState::Running => Pending {
                running: true,
                detail: "running".into(),
            },
            QueueState::Absent => Pending {
                running: false,
                detail: "gone from the queue".into(),
            },
        }))
    }

    async fn follow(
        &self,
        mut remote: Remote,
        job: Option<&Prepared>,
        ev: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Finished> {
        let labels = Labels(job);
        let id = remote.id.clone();
        let mut live = Live {
            cached: BTreeSet::new(),
            started: None,
            last_heard: None,
            error: None,
            current: String::new(),
        };
        let (entry, via_ws) = self
            .follow_entry(&id, &mut remote.ws, &mut live, &labels, ev)
            .await?;
        drop(remote.ws.take());
        let t_done = Instant::now();
        r.followed_by = Some(if via_ws { "websocket" } else { "polling" }.into());
        r.remote_status = entry
            .pointer("/status/status_str")
            .and_then(Value::as_str)
            .map(str::to_string);

        // The node map: what we sent, or (attached) the prompt the history recorded.
        let nodes = if remote.nodes.is_empty() {
            entry
                .pointer("/prompt/2")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        } else {
            std::mem::take(&mut remote.nodes)
        };
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
            Outcome::Error(d) => {
                return Err(Error::Failed(self.describe_error(
                    &d,
                    &labels,
                    self.verbose,
                )))
            }
            Outcome::Interrupted(d) => {
                let node = d.get("node_id").and_then(Value::as_str).unwrap_or("?");
                return Err(Error::Failed(format!(
                    "prompt {id} was interrupted on the server (at node {}); someone pressed Cancel or another client interrupted it",
                    labels.label(node)
                )));
            }
            Outcome::Unknown(s) => {
                return Err(Error::Failed(match live.error.as_ref() {
                    Some(d) => self.describe_error(d, &labels, self.verbose),
                    None => format!(
                        "prompt {id} ended with status '{}'",
                        crate::redacted::escape_controls(&s)
                    ),
                }))
            }
        }

        let all_cached = ran.is_empty() && !cached.is_empty();
        if all_cached {
            let has_seed = job.is_some_and(|j| j.plan.has_seed);
            ev.emit(Event::Note(
                0,
                format!(
                    "all {} node{} cached; outputs are from an earlier run ({})",
                    cached.len(),
                    if cached.len() == 1 { "" } else { "s" },
                    if has_seed {
                        "change an input or use --random-seed for new ones"
                    } else {
                        "change an input for new ones"
                    }
                ),
            ));
        }
        let stats = std::mem::replace(&mut remote.stats, Stats::Ready(None))
            .get(ev)
            .await;
        if let Some(h) = cache_hint(stats.as_ref(), &ran, &nodes) {
            ev.emit(Event::Note(0, h.clone()));
            r.hints.push(h);
        }
        if let Some(q) = remote.queued {
            r.timings.queue_wait_s = live.started.map(|s| secs(s.saturating_duration_since(q)));
            r.timings.run_s = Some(secs(
                t_done.saturating_duration_since(live.started.unwrap_or(q)),
            ));
        }
        r.all_cached = Some(all_cached);
        r.nodes = Some(NodeCounts {
            executed: ran.len(),
            cached: cached.len(),
            executed_ids: ran,
            cached_ids: cached.into_iter().collect(),
        });
        let files = history::output_files(&entry, self.include_temp);
        let skipped_temp = if self.include_temp {
            0
        } else {
            history::temp_count(&entry)
        };
        Ok(Finished {
            files,
            skipped_temp,
            all_cached,
        })
    }

    fn outputs(&self, fin: &Finished) -> Result<Vec<OutputRef>> {
        Ok(fin
            .files
            .iter()
            .enumerate()
            .map(|(index, f)| OutputRef {
                name: f.filename.clone(),
                node: Some(f.node.clone()),
                index,
            })
            .collect())
    }

    fn no_outputs(&self, fin: &Finished, id: &str) -> Error {
        Error::Failed(format!(
            "prompt {id} finished but listed no output files{}; pass --allow-empty if that is expected",
            if fin.skipped_temp > 0 {
                format!(
                    " ({} temporary previews skipped; --include-temp saves them)",
                    fin.skipped_temp
                )
            } else {
                String::new()
            }
        ))
    }

    async fn fetch<'a>(
        &'a self,
        fin: &'a Finished,
        o: &OutputRef,
    ) -> std::result::Result<Body<'a>, SaveError> {
        let f = &fin.files[o.index];
        let what = format!(
            "GET /view {}",
            crate::redacted::escape_controls(&f.filename)
        );
        let resp = self
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
            .map_err(|e| {
                SaveError::Net(NetError::from_reqwest(
                    &e,
                    &what,
                    &self.client.target(),
                    &self.client.server.secrets,
                ))
            })?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            let why = if fin.all_cached {
                "; every node came from ComfyUI's cache, so these are an earlier run's files, and the server no longer has them. Run again with a changed input (e.g. --random-seed) to make new ones"
            } else {
                "; the server deleted it before it could be downloaded"
            };
            return Err(SaveError::Invalid(format!(
                "it is not on the server (GET /view answered 404){why}"
            )));
        }
        if !resp.status().is_success() {
            return Err(match self.client.status_error(&what, resp).await {
                Error::Net(n) => SaveError::Net(n),
                other => SaveError::Invalid(other.to_string()),
            });
        }
        Ok(Body::Http {
            resp,
            what,
            server: self.client.target(),
            secrets: &self.client.server.secrets,
        })
    }

    async fn cancel(&self, id: &str) -> String {
        match tokio::time::timeout(crate::engine::CANCEL_TIMEOUT, cancel_remote(&self.client, id)).await {
            Ok(s) => s,
            Err(_) => format!(
                "the server did not answer the cancel in {} s; prompt {id} may still run (check with: {})",
                crate::engine::CANCEL_TIMEOUT.as_secs(),
                self.status_command(id, false)
            ),
        }
    }

    /// `comfyctl cancel` is RunPod's; a ComfyUI prompt is cancelled in ComfyUI's queue.
    fn cancel_command(&self, _id: &str) -> Option<String> {
        None
    }

    fn refetch_command(&self, id: &str) -> String {
        self.status_command(id, true)
    }

    /// Version, device and cache mode from `/system_stats`; the schema of the classes the job
    /// uses from `GET /object_info/{class}` (a few concurrently, never the whole `/object_info`);
    /// the server-side names of the uploaded images.
    async fn facts(&self, job: &Prepared) -> Value {
        use futures_util::StreamExt;
        let t = Duration::from_secs(10);
        let classes: BTreeSet<String> = job
            .nodes
            .values()
            .filter_map(|n| n.get("class_type")?.as_str().map(str::to_string))
            .collect();
        let per_class = futures_util::stream::iter(classes.into_iter().map(|c| async move {
            let v = self
                .client
                .get_json(&format!("object_info/{}", encode(&c)), t)
                .await;
            (c, v)
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>();
        let (stats, per_class) = tokio::join!(self.client.get_json("system_stats", t), per_class);
        let mut schema = Map::new();
        let mut unavailable = Vec::new();
        for (c, v) in per_class {
            match v {
                Ok(v) => {
                    let entry = v
                        .get(&c)
                        .map(|e| e.get("input").cloned().unwrap_or_else(|| json!({})))
                        .unwrap_or(Value::Null);
                    schema.insert(c, entry);
                }
                // A proxy that hides the route, a class name the server cannot route: unknown,
                // which is not the same as absent.
                Err(_) => unavailable.push(c),
            }
        }
        schema.sort_keys();
        unavailable.sort();
        let stats = stats.ok();
        let sys = stats.as_ref().and_then(|s| s.get("system"));
        let device = stats
            .as_ref()
            .and_then(|s| s.pointer("/devices/0"))
            .map(|d| json!({"name": d.get("name"), "type": d.get("type")}));
        let names: Map<String, Value> = self
            .uploaded
            .lock()
            .map(|u| {
                u.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "comfyui_version": sys.and_then(|s| s.get("comfyui_version")),
            "python_version": sys.and_then(|s| s.get("python_version")),
            "pytorch_version": sys.and_then(|s| s.get("pytorch_version")),
            "device": device,
            "cache": stats.as_ref().map(cache_mode),
            "node_schema": if schema.is_empty() { Value::Null } else { Value::Object(schema) },
            "node_schema_unavailable": unavailable,
            "image_names": names,
        })
    }
}

/// ComfyUI's cache mode from `/system_stats` argv: `classic` (the default), `lru N`, `ram`,
/// `none`.
fn cache_mode(stats: &Value) -> String {
    let argv: Vec<&str> = stats
        .pointer("/system/argv")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (i, a) in argv.iter().enumerate() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (*a, None),
        };
        let mode = match flag {
            "--cache-lru" => "lru",
            "--cache-ram" => "ram",
            "--cache-none" => "none",
            "--cache-classic" => "classic",
            _ => continue,
        };
        let arg = inline.or_else(|| argv.get(i + 1).copied().filter(|n| !n.starts_with("--")));
        return match (mode, arg) {
            ("lru" | "ram", Some(n)) => format!("{mode} {n}"),
            _ => mode.to_string(),
        };
    }
    "classic".into()
}

impl ComfyTarget {
    /// `comfyctl status ID --url URL [--save -o DIR]`, as it can be pasted (credentials are not
    /// printed: they come from COMFY_URL or --header again).
    fn status_command(&self, id: &str, save: bool) -> String {
        let mut s = format!("comfyctl status {}", crate::redacted::shell_quote(id));
        if !self.client.server.again.is_empty() {
            s.push(' ');
            s.push_str(&self.client.server.again);
        }
        if save {
            s.push_str(&format!(" --save -o {}", self.refetch_dir));
        }
        s
    }

    /// A 400 from `/prompt`, with the findings of a check against the server's live schema
    /// added (did-you-mean, the allowed values, the pack a missing class comes from), fetched
    /// only now that something is wrong. Best effort: without a schema the server's own words
    /// stand.
    async fn enrich(
        &self,
        e: Error,
        nodes: &Map<String, Value>,
        job: &Prepared,
        ev: &dyn Events,
    ) -> Error {
        let Error::Rejected {
            target,
            message,
            mut diagnostics,
        } = e
        else {
            return e;
        };
        let schema = match &self.object_info {
            Some(_) => None,
            None => tokio::time::timeout(
                Duration::from_secs(20),
                crate::schema::fetch(&self.client.server),
            )
            .await
            .ok()
            .and_then(|r| r.ok()),
        };
        if let Some(schema) = schema {
            ev.emit(Event::Note(
                1,
                "checking the rejected workflow against the server's /object_info".into(),
            ));
            let uploaded: BTreeSet<&str> =
                job.plan.images.iter().map(|i| i.node.as_str()).collect();
            for d in crate::schema::check(&schema, nodes, &job.doc.file) {
                let upload = d.code == "value_not_in_list"
                    && d.input.as_deref() == Some("image")
                    && d.node_id.as_deref().is_some_and(|n| uploaded.contains(n));
                if !d.is_error() || upload {
                    continue;
                }
                // The server already named this input: give its finding the schema's fix
                // (the closest allowed value, the range); else add the finding.
                match diagnostics
                    .iter_mut()
                    .find(|x| x.node_id == d.node_id && x.input.is_some() && x.input == d.input)
                {
                    Some(x) => {
                        if !d.fix.is_empty() {
                            x.fix = d.fix;
                        }
                    }
                    None => diagnostics.push(d),
                }
            }
        }
        Error::Rejected {
            target,
            message,
            diagnostics,
        }
    }

    /// Diagnostics built from the server's words, with every secret of ours removed (a proxy or
    /// custom node may echo a header back).
    fn scrubbed(
        &self,
        mut diags: Vec<crate::diagnostic::Diagnostic>,
    ) -> Vec<crate::diagnostic::Diagnostic> {
        for d in &mut diags {
            d.message = self.client.scrub(&d.message);
            d.fix = self.client.scrub(&d.fix);
            d.class_type = d.class_type.as_deref().map(|c| self.client.scrub(c));
            d.input = d.input.as_deref().map(|c| self.client.scrub(c));
            d.title = d.title.as_deref().map(|c| self.client.scrub(c));
        }
        diags
    }

    fn unreachable(&self, e: NetError) -> Error {
        e.hint("is ComfyUI running there? (set --url or COMFY_URL)")
            .into()
    }

    /// `POST /prompt` under our own prompt ID; returns it and the queue number.
    async fn queue(
        &self,
        nodes: &Map<String, Value>,
        job: &Prepared,
        ev: &dyn Events,
        r: &mut JobResult,
    ) -> Result<(String, Value)> {
        let our_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "prompt": nodes,
            "client_id": self.client_id,
            "prompt_id": our_id,
        });
        let bytes = serde_json::to_vec(&body).expect("serializable");
        if bytes.len() as u64 > DEFAULT_BODY_LIMIT {
            return Err(Error::Usage(format!(
                "{}: the workflow is {} as JSON, over ComfyUI's default request limit of {}",
                job.doc.file,
                human_bytes(bytes.len() as u64),
                human_bytes(DEFAULT_BODY_LIMIT)
            )));
        }
        // From here on a cancel must look for this prompt on the server, and a journal must
        // know it before the server does.
        ev.journal(crate::engine::Step::Submitting {
            remote: Some(our_id.clone()),
        })?;
        r.job_id = Some(our_id.clone());
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
            let body = net::read_capped(
                resp,
                16 << 20,
                what,
                &self.client.target(),
                &self.client.server.secrets,
            )
            .await?;
            let text = String::from_utf8_lossy(&body);
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(self
                .enrich(self.rejected(&v, &text, job), nodes, job, ev)
                .await);
        }
        if !status.is_success() {
            return Err(self.client.status_error(what, resp).await);
        }
        let v = self.client.read_json(resp, 16 << 20, what).await?;
        let id = v
            .get("prompt_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                NetError::new(NetKind::BadAnswer, what, self.client.target())
                    .detail("the answer has no prompt_id")
            })?
            .to_string();
        if id != our_id {
            // An older ComfyUI ignores a client-chosen prompt_id: follow the one it chose.
            ev.emit(Event::Note(
                1,
                format!("the server chose its own prompt ID {id}"),
            ));
        }
        r.job_id = Some(id.clone());
        ev.journal(crate::engine::Step::Accepted { remote: id.clone() })?;
        if let Some(ne) = v
            .get("node_errors")
            .filter(|n| n.as_object().is_some_and(|m| !m.is_empty()))
        {
            ev.emit(Event::Warn(
                "the server queued the prompt but rejected some output nodes; only the valid outputs will run:".into(),
            ));
            for d in self.scrubbed(history::node_error_diagnostics(ne, job, true)) {
                ev.emit(Event::Warn(d.to_string()));
                r.warnings.push(d.to_string());
                r.diagnostics.push(d);
            }
        }
        Ok((id, v.get("number").cloned().unwrap_or(Value::Null)))
    }

    /// Uploads every input image once; returns upload name → the name to put in the workflow.
    async fn upload(&self, job: &Prepared, ev: &dyn Events) -> Result<BTreeMap<String, String>> {
        let mut names = BTreeMap::new();
        for img in &job.plan.images {
            if names.contains_key(&img.upload_name) {
                continue;
            }
            if let Some(n) = self
                .uploaded
                .lock()
                .expect("not poisoned")
                .get(&img.upload_name)
            {
                names.insert(img.upload_name.clone(), n.clone());
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
            ev.emit(Event::Submitting(format!(
                "uploading {}",
                img.path.display()
            )));
            let part = reqwest::multipart::Part::bytes(img.bytes.clone())
                .file_name(img.upload_name.clone())
                .mime_str(img.media.mime())
                .map_err(|e| Error::Usage(format!("{}: cannot upload: {e}", img.path.display())))?;
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
            let v = self.client.read_json(resp, 1 << 20, what).await?;
            let name = v.get("name").and_then(Value::as_str).ok_or_else(|| {
                NetError::new(NetKind::BadAnswer, what, self.client.target())
                    .detail("the answer has no 'name'")
            })?;
            let sub = v.get("subfolder").and_then(Value::as_str).unwrap_or("");
            let server_name = if sub.is_empty() {
                name.to_string()
            } else {
                format!("{sub}/{name}")
            };
            ev.emit(Event::Note(
                1,
                format!(
                    "uploaded {} ({}) as {}",
                    img.path.display(),
                    human_bytes(size),
                    crate::redacted::escape_controls(&server_name)
                ),
            ));
            self.uploaded
                .lock()
                .expect("not poisoned")
                .insert(img.upload_name.clone(), server_name.clone());
            names.insert(img.upload_name.clone(), server_name);
        }
        Ok(names)
    }

    /// A 400 from `/prompt` as per-node diagnostics.
    fn rejected(&self, v: &Value, raw: &str, job: &Prepared) -> Error {
        let message = self.client.scrub(
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("the server rejected the workflow"),
        );
        let details = self.client.scrub(
            v.pointer("/error/details")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let details = details.as_str();
        let mut diagnostics = v
            .get("node_errors")
            .map(|ne| self.scrubbed(history::node_error_diagnostics(ne, job, false)))
            .unwrap_or_default();
        if diagnostics.is_empty() {
            let text = if v.is_null() {
                crate::redacted::escape_controls(&self.client.scrub(raw.trim()))
            } else if details.is_empty() {
                message.clone()
            } else {
                format!("{message} ({details})")
            };
            diagnostics.push(
                crate::diagnostic::Diagnostic::error("server_rejected", text)
                    .file(job.doc.file.clone()),
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
    async fn follow_entry(
        &self,
        id: &str,
        ws_rx: &mut Option<mpsc::Receiver<WsEvent>>,
        live: &mut Live,
        labels: &Labels<'_>,
        ev: &dyn Events,
    ) -> Result<(Value, bool)> {
        enum Next {
            Ws(Option<WsEvent>),
            Poll,
        }
        // Without a socket (a batch), /history is the only signal: ask soon, then back off
        // gently (x1.5 up to 1 s); with one, polling is only the backstop.
        let (start, grow, cap) = if ws_rx.is_some() {
            (Duration::from_millis(250), 2.0, Duration::from_secs(2))
        } else {
            (Duration::from_millis(50), 1.5, Duration::from_secs(1))
        };
        let mut backoff = start;
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
                    if self.on_message(id, &v, live, labels, ev) {
                        // `executing {node: null}` is sent after the history write.
                        // A failed fetch here is retried by the polling below.
                        if let Ok(Some(e)) = self.history(id).await {
                            return Ok((e, true));
                        }
                        backoff = Duration::from_millis(100);
                        next_poll = tokio::time::Instant::now() + backoff;
                    }
                }
                Next::Ws(closed) => {
                    let reason = match closed {
                        Some(WsEvent::Closed(r)) => r,
                        _ => "connection ended".into(),
                    };
                    ev.emit(Event::Note(
                        0,
                        format!(
                        "note: the websocket closed ({}); following the prompt by polling /history",
                        self.client.scrub(&reason)
                    ),
                    ));
                    *ws_rx = None;
                    backoff = Duration::from_millis(100);
                    next_poll = tokio::time::Instant::now();
                }
                Next::Poll => {
                    if let Some(e) = self.poll(id, live, &mut poller, ev).await? {
                        if ws_rx.is_some() {
                            ev.emit(Event::Note(
                                1,
                                format!(
                                    "the websocket went quiet (another connection with client ID '{}'?); found the result in /history",
                                    self.client_id
                                ),
                            ));
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
                        backoff.mul_f64(grow).min(cap)
                    };
                    next_poll = tokio::time::Instant::now() + backoff;
                }
            }
        }
    }

    /// Handles one websocket message; true when it says our prompt is over.
    fn on_message(
        &self,
        id: &str,
        v: &Value,
        live: &mut Live,
        labels: &Labels<'_>,
        ev: &dyn Events,
    ) -> bool {
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
                ev.emit(Event::Started("running".into()));
            }
            "execution_cached" => {
                live.started.get_or_insert_with(Instant::now);
                let nodes = history::ids(d.get("nodes"));
                if !nodes.is_empty() {
                    ev.emit(Event::Cached(nodes.len()));
                }
                live.cached.extend(nodes);
            }
            "executing" => match d.get("node").and_then(Value::as_str) {
                None => return true,
                Some(node) => {
                    live.started.get_or_insert_with(Instant::now);
                    live.current = labels.label(node);
                    ev.emit(Event::Node(live.current.clone()));
                }
            },
            "progress" => {
                let value = d.get("value").and_then(Value::as_u64).unwrap_or(0);
                let max = d.get("max").and_then(Value::as_u64).unwrap_or(0);
                if max > 0 {
                    ev.emit(Event::Progress { value, max });
                }
            }
            "executed" => {
                if let Some(node) = d.get("node").and_then(Value::as_str) {
                    ev.emit(Event::Note(
                        2,
                        format!("node {} produced output", labels.label(node)),
                    ));
                }
            }
            "execution_error" => live.error = Some(d.clone()),
            "execution_interrupted" => {
                ev.emit(Event::Note(
                    1,
                    "the server reports the prompt interrupted".into(),
                ));
            }
            _ => {}
        }
        false
    }

    /// `GET /history/{id}`: the entry once the prompt is over.
    async fn history(&self, id: &str) -> Result<Option<Value>> {
        let h = self
            .client
            .get_json(&format!("history/{}", encode(id)), CONTROL_TIMEOUT)
            .await?;
        Ok(h.get(id).cloned())
    }

    /// One poll: history first (done?), then the queue (position, still there?). Transient
    /// failures are tolerated for [`POLL_FAILURE_GRACE`].
    async fn poll(
        &self,
        id: &str,
        live: &mut Live,
        p: &mut Poller,
        ev: &dyn Events,
    ) -> Result<Option<Value>> {
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
                ev.emit(Event::Note(1, format!("poll failed, retrying: {e}")));
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
                    ev.emit(if live.current.is_empty() {
                        Event::Started("running".into())
                    } else {
                        Event::Node(live.current.clone())
                    });
                }
            }
            QueueState::Pending(n) => {
                p.absent = 0;
                ev.emit(Event::Queued {
                    position: Some(n as u64),
                    detail: String::new(),
                });
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

    /// `execution_error` data as one readable message.
    fn describe_error(&self, d: &Value, labels: &Labels<'_>, verbose: bool) -> String {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        let node = s("node_id");
        let mut msg = format!(
            "node {} failed on the server: {}: {}",
            labels.label(node),
            if s("exception_type").is_empty() {
                "error"
            } else {
                s("exception_type")
            },
            self.client.scrub(s("exception_message").trim())
        );
        if verbose {
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
}

fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, crate::net::PATH_SEGMENT).to_string()
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

#[derive(Default)]
struct Poller {
    failing_since: Option<Instant>,
    absent: u32,
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
