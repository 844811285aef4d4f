//! A RunPod serverless endpoint as a [`Target`]: build the worker-comfyui request (workflow +
//! inline images), check its size against RunPod's limits *before* uploading, `POST /run` (or
//! `/runsync`), poll `/status/{id}` adaptively, then hand each output to the engine to save.
//! A cancelled run cancels the remote job (`POST /cancel/{id}`) so nobody pays for a result no
//! one will collect.
//!
//! Submodules: [`client`] (HTTP, auth, retries), [`poll`] (intervals), [`response`] (borrowed
//! parsing of answers and output shapes).

pub mod client;
pub mod poll;
pub mod response;

use crate::engine::{Event, Events, OutputRef, Pending, Target};
use crate::error::{Error, Result};
use crate::job::Prepared;
use crate::net::{NetError, NetKind};
use crate::outputs::{Body, SaveError};
use crate::redacted::shell_quote;
use crate::report::human_bytes;
use crate::result::{secs, JobResult, TargetInfo};
use crate::schema::Schema;
use crate::settings::{Preflight, RunpodEndpoint, RunpodOptions};
use base64::Engine as _;
use client::{Client, Reply};
use response::{JobBody, Source};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Request body limit of `/run` (RunPod documents 10 MB).
pub const RUN_LIMIT: usize = 10_000_000;
/// Request body limit of `/runsync` (RunPod documents 20 MB).
pub const RUNSYNC_LIMIT: usize = 20_000_000;

/// A RunPod endpoint, as the engine drives it.
#[derive(Debug)]
pub struct RunpodTarget {
    client: Client,
    opts: RunpodOptions,
    client_id: String,
    object_info: Option<PathBuf>,
    /// How long `/runsync` may hold the request (the run's deadline).
    sync_wait: Duration,
    /// `-o DIR` as it can be pasted into a printed command.
    out_dir: String,
}

/// A submitted job: its ID and the last answer about it.
pub struct Remote {
    id: String,
    body: Vec<u8>,
    known: bool,
}

/// A COMPLETED job: the final answer and where each output's bytes are in it.
pub struct Finished {
    body: Vec<u8>,
    files: Vec<(String, Loc)>,
    status: Option<String>,
    warnings: Vec<String>,
}

/// Where one output's bytes are.
enum Loc {
    /// Base64 text at this byte range of the final body (no copy).
    InBody(std::ops::Range<usize>),
    /// Base64 text that had JSON escapes, unescaped.
    Owned(String),
    Url(String),
}

impl RunpodTarget {
    pub fn new(
        endpoint: RunpodEndpoint,
        opts: RunpodOptions,
        client_id: &str,
        object_info: Option<PathBuf>,
        deadline: Option<Duration>,
        out_dir: &std::path::Path,
    ) -> Result<Self> {
        Ok(RunpodTarget {
            client: Client::new(endpoint)?,
            opts,
            client_id: client_id.to_string(),
            object_info,
            // /runsync holds the request until the job ends or `wait` passes; then the job is
            // followed by polling. Held at most 30 s (and half the deadline), so a cancelled run
            // gets the answer — and the job ID to cancel — within the engine's submit grace.
            sync_wait: deadline
                .map(|d| d / 2)
                .unwrap_or(Duration::from_secs(30))
                .min(Duration::from_secs(30)),
            out_dir: shell_quote(&out_dir.display().to_string()),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `comfyctl SUB ID --endpoint … [rest]`, as it can be pasted (the key comes from
    /// RUNPOD_API_KEY or the same --api-key-file).
    pub fn command(&self, sub: &str, id: &str, rest: &str) -> String {
        let mut s = format!("comfyctl {sub} {}", shell_quote(id));
        if !self.client.endpoint.flags.is_empty() {
            s.push(' ');
            s.push_str(&self.client.endpoint.flags);
        }
        if !rest.is_empty() {
            s.push(' ');
            s.push_str(rest);
        }
        s
    }

    /// The worker-comfyui request:
    /// `{"input": {"workflow", "images", "client_id", ...}, "policy"?, "webhook"?}`. Other `input`
    /// keys of a RunPod request file (e.g. `comfy_org_api_key`) are kept, and so are its images
    /// unless an injected image has the same name. Also returns warnings: LoadImage nodes whose
    /// file travels in no `input.images` entry.
    pub fn build_request(&self, prepared: &Prepared) -> (Vec<u8>, Vec<String>) {
        build_request(&self.opts, &self.client_id, prepared)
    }
}

/// See [`RunpodTarget::build_request`].
pub fn build_request(
    opts: &RunpodOptions,
    client_id: &str,
    prepared: &Prepared,
) -> (Vec<u8>, Vec<String>) {
    let nodes = prepared.nodes_with(|img| img.upload_name.clone());
    let mut input = Map::new();
    let mut images = Vec::new();
    let mut seen = BTreeSet::new();
    for img in &prepared.plan.images {
        if seen.insert(img.upload_name.clone()) {
            images.push(json!({
                "name": img.upload_name,
                "image": base64::engine::general_purpose::STANDARD.encode(&img.bytes),
            }));
        }
    }
    if let Some(orig) = prepared.doc.runpod_input() {
        for (k, v) in orig {
            match k.as_str() {
                "workflow" | "client_id" => {}
                "images" => {
                    for e in v.as_array().into_iter().flatten() {
                        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
                        if seen.insert(name.to_string()) {
                            images.push(e.clone());
                        }
                    }
                }
                _ => {
                    input.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let mut warnings = Vec::new();
    for (id, node) in &nodes {
        let class = node.get("class_type").and_then(Value::as_str).unwrap_or("");
        if !matches!(class, "LoadImage" | "LoadImageMask") {
            continue;
        }
        if let Some(name) = node
            .get("inputs")
            .and_then(|i| i.get("image"))
            .and_then(Value::as_str)
        {
            if !seen.contains(name) {
                warnings.push(format!(
                    "node {id} ({class}) loads '{name}', which this request does not carry; unless the worker already has it, the job will fail (send it with --image {id}=PATH)"
                ));
            }
        }
    }
    input.insert("workflow".into(), Value::Object(nodes));
    if !images.is_empty() {
        input.insert("images".into(), Value::Array(images));
    }
    input.insert("client_id".into(), Value::String(client_id.to_string()));
    let mut req = Map::new();
    req.insert("input".into(), Value::Object(input));
    let mut policy = Map::new();
    if let Some(t) = opts.execution_timeout {
        policy.insert("executionTimeout".into(), json!(t.as_millis() as u64));
    }
    if let Some(t) = opts.ttl {
        policy.insert("ttl".into(), json!(t.as_millis() as u64));
    }
    if !policy.is_empty() {
        req.insert("policy".into(), Value::Object(policy));
    }
    if let Some(w) = &opts.webhook {
        req.insert("webhook".into(), Value::String(w.clone()));
    }
    (
        serde_json::to_vec(&Value::Object(req)).expect("serializable"),
        warnings,
    )
}

impl Target for RunpodTarget {
    type Remote = Remote;
    type Finished = Finished;

    fn info(&self) -> TargetInfo {
        TargetInfo {
            kind: "runpod",
            url: self.client.shown().to_string(),
            endpoint: self.client.endpoint_id().map(str::to_string),
        }
    }

    /// RunPod has no `/object_info`: the check runs only with `--object-info FILE` (a schema saved
    /// from a ComfyUI of the same image), since a rejected job costs a worker start.
    async fn schema(&self, _policy: Preflight, _ev: &dyn Events) -> Result<Option<Schema>> {
        match &self.object_info {
            Some(p) => crate::schema::read_file(p).map(Some),
            None => Ok(None),
        }
    }

    async fn submit(&self, job: &Prepared, ev: &dyn Events, r: &mut JobResult) -> Result<Remote> {
        let (body, warnings) = self.build_request(job);
        for w in warnings {
            ev.emit(Event::Warn(w.clone()));
            r.warnings.push(w);
        }
        let (limit, route, other) = if self.opts.sync {
            (RUNSYNC_LIMIT, "/runsync", "")
        } else {
            (
                RUN_LIMIT,
                "/run",
                "use --sync (/runsync takes up to 20 MB), ",
            )
        };
        if body.len() > limit {
            return Err(Error::Usage(format!(
                "the request is {} but RunPod's {route} accepts at most {} (input images travel inside it as base64, which adds a third); {other}send smaller images (JPEG, or downscaled), or put the inputs on the endpoint's network volume",
                human_bytes(body.len() as u64),
                human_bytes(limit as u64)
            )));
        }
        ev.emit(Event::Note(
            1,
            format!(
                "request: {} to {}{route}",
                human_bytes(body.len() as u64),
                self.client.shown()
            ),
        ));
        let t0 = Instant::now();
        let path = if self.opts.sync {
            let wait = (self.sync_wait.as_millis() as u64).clamp(1000, 30_000);
            format!("runsync?wait={wait}")
        } else {
            "run".to_string()
        };
        ev.emit(Event::Submitting(format!(
            "submitting to {}{route}",
            self.client.shown()
        )));
        // Before the request: a run killed from here on knows a job may exist.
        ev.journal(crate::engine::Step::Submitting { remote: None })?;
        let reply = self.client.submit(&path, &body, ev).await?;
        self.check_submit(route, &reply)?;
        r.timings.submit_s = Some(secs(t0.elapsed()));
        let id = {
            let job = self.parse_job(&reply.body)?;
            job.id.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
                NetError::new(
                    NetKind::BadAnswer,
                    format!("POST {route}"),
                    self.client.shown(),
                )
                .detail(format!(
                    "the answer has no job ID: {}",
                    self.client.excerpt(&reply.body)
                ))
            })?
        };
        r.job_id = Some(id.clone());
        ev.journal(crate::engine::Step::Accepted { remote: id.clone() })?;
        let shown = crate::redacted::escape_controls(&id);
        if response::is_final(self.parse_job(&reply.body)?.status()) {
            ev.emit(Event::Note(0, format!("job ID: {shown}")));
        } else {
            ev.emit(Event::Note(
                0,
                format!(
                    "job ID: {shown} (resume with: {}; cancel with: {})",
                    self.command("status", &id, &format!("--wait -o {}", self.out_dir)),
                    self.command("cancel", &id, "")
                ),
            ));
        }
        r.followed_by = Some(if self.opts.sync { "runsync" } else { "polling" }.into());
        Ok(Remote {
            id,
            body: reply.body,
            known: true,
        })
    }

    async fn attach(&self, id: &str, _ev: &dyn Events, r: &mut JobResult) -> Result<Remote> {
        r.job_id = Some(id.to_string());
        Ok(Remote {
            id: id.to_string(),
            body: Vec::new(),
            known: false,
        })
    }

    async fn peek(
        &self,
        remote: &mut Remote,
        ev: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Option<Pending>> {
        if remote.body.is_empty() {
            remote.body = self.fetch_status(&remote.id, remote.known, ev).await?;
            remote.known = true;
        }
        let job = self.parse_job(&remote.body)?;
        note_job(r, &job);
        let st = job.status().to_string();
        Ok((!response::is_final(&st)).then(|| Pending {
            running: matches!(st.as_str(), "IN_PROGRESS" | "RUNNING"),
            detail: format!("{st} ({})", describe_state(&st)),
        }))
    }

    async fn follow(
        &self,
        mut remote: Remote,
        _job: Option<&Prepared>,
        ev: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Finished> {
        let id = remote.id.clone();
        if remote.body.is_empty() {
            remote.body = self.fetch_status(&id, remote.known, ev).await?;
        }
        let mut schedule = poll::Schedule::new(self.opts.poll_interval);
        let mut last_state = String::new();
        loop {
            let delay = {
                let job = self.parse_job(&remote.body)?;
                note_job(r, &job);
                let st = job.status().to_string();
                if response::is_final(&st) {
                    show_times(ev, &job);
                    break;
                }
                if st != last_state {
                    if !matches!(st.as_str(), "IN_QUEUE" | "IN_PROGRESS" | "RUNNING" | "") {
                        ev.emit(Event::Warn(format!(
                            "job {id}: unknown status '{}', still waiting",
                            crate::redacted::escape_controls(&st)
                        )));
                    }
                    last_state = st.clone();
                }
                let detail = format!("job {id}: {}", describe_state(&st));
                ev.emit(match st.as_str() {
                    "IN_PROGRESS" | "RUNNING" => Event::Started(detail),
                    _ => Event::Queued {
                        position: None,
                        detail,
                    },
                });
                schedule.next(&st)
            };
            tokio::time::sleep(delay).await;
            remote.body = self
                .fetch_status(&id, true, ev)
                .await
                .map_err(|e| match e {
                    // The job itself may be fine: say how to pick it up again.
                    Error::Net(n) => NetError {
                        hint: Some(format!(
                            "{}job {id} may still be running; resume with: {} (or cancel it: {})",
                            n.hint.clone().map(|h| format!("{h}; ")).unwrap_or_default(),
                            self.command("status", &id, &format!("--wait -o {}", self.out_dir)),
                            self.command("cancel", &id, "")
                        )),
                        ..n
                    }
                    .into(),
                    other => other,
                })?;
        }
        self.finished(&id, remote.body, ev, r)
    }

    fn outputs(&self, fin: &Finished) -> Result<Vec<OutputRef>> {
        Ok(fin
            .files
            .iter()
            .enumerate()
            .map(|(index, (name, _))| OutputRef {
                name: name.clone(),
                node: None,
                index,
            })
            .collect())
    }

    fn no_outputs(&self, fin: &Finished, id: &str) -> Error {
        let st = fin
            .status
            .as_deref()
            .map(|s| format!(" (worker status: {})", crate::redacted::escape_controls(s)))
            .unwrap_or_default();
        let why = if fin.warnings.is_empty() {
            String::new()
        } else {
            format!("; worker warnings: {}", fin.warnings.join("; "))
        };
        Error::Failed(format!(
            "job {id} completed but returned no files{st}{why}. The worker only returns `images` outputs (SaveImage, SaveAnimatedWEBP, core SaveVideo); preview-only, text, audio or VHS video outputs do not come back. Use --allow-empty if that is expected"
        ))
    }

    async fn fetch<'a>(
        &'a self,
        fin: &'a Finished,
        o: &OutputRef,
    ) -> std::result::Result<Body<'a>, SaveError> {
        match &fin.files[o.index].1 {
            Loc::InBody(range) => std::str::from_utf8(&fin.body[range.clone()])
                .map(Body::Base64)
                .map_err(|_| SaveError::Invalid("the base64 text is not UTF-8".into())),
            Loc::Owned(s) => Ok(Body::Base64(s)),
            Loc::Url(u) => {
                let resp = self.client.download(u).await.map_err(SaveError::Net)?;
                Ok(Body::Http {
                    resp,
                    what: "GET (result URL)".into(),
                    server: crate::redacted::display_url(u),
                    secrets: &self.client.endpoint.secrets,
                })
            }
        }
    }

    async fn cancel(&self, id: &str) -> String {
        if self.client.is_local_sdk() {
            return format!(
                "job {id} keeps running: the runpod SDK's local test server has no /cancel"
            );
        }
        let quiet = crate::report::Reporter::new(true, 0);
        let r = tokio::time::timeout(
            crate::engine::CANCEL_TIMEOUT,
            self.client.cancel(id, &quiet),
        )
        .await;
        let again = self.command("cancel", id, "");
        match r {
            Ok(Ok(reply)) if reply.status == 200 => {
                // RunPod answers a cancel of a finished job with its final status.
                let st = self
                    .parse_job(&reply.body)
                    .map(|j| j.status().to_string())
                    .unwrap_or_default();
                if st == "COMPLETED" {
                    format!(
                        "job {id} had already COMPLETED; save its outputs with: {}",
                        self.refetch_command(id)
                    )
                } else {
                    format!("job {id} was cancelled")
                }
            }
            Ok(Ok(reply)) => format!(
                "job {id} could not be cancelled (HTTP {}: {}); try: {again}",
                reply.status,
                self.client.excerpt(&reply.body)
            ),
            Ok(Err(e)) => format!("job {id} could not be cancelled ({e}); try: {again}"),
            Err(_) => format!("job {id} could not be cancelled in 10 s; try: {again}"),
        }
    }

    fn cancel_command(&self, id: &str) -> Option<String> {
        Some(self.command("cancel", id, ""))
    }

    fn refetch_command(&self, id: &str) -> String {
        self.command("status", id, &format!("--save -o {}", self.out_dir))
    }

    /// The endpoint (the worker is in the result); images go inline under their content names.
    async fn facts(&self, _job: &Prepared) -> Value {
        serde_json::json!({"endpoint_id": self.info().endpoint})
    }
}

impl RunpodTarget {
    /// Interprets the HTTP status of a submit.
    fn check_submit(&self, route: &str, reply: &Reply) -> Result<()> {
        let c = &self.client;
        match reply.status {
            200..=299 => Ok(()),
            404 => Err(Error::Usage(format!(
                "no such endpoint: {}{route} answered 404 ({}); check --endpoint / RUNPOD_ENDPOINT_ID, or --runpod-url",
                c.shown(),
                c.excerpt(&reply.body)
            ))),
            413 => Err(Error::Usage(format!(
                "RunPod refused the request as too large (HTTP 413): {}",
                c.excerpt(&reply.body)
            ))),
            400 | 422 => Err(Error::Usage(format!(
                "{}{route} refused the request (HTTP {}): {}",
                c.shown(),
                reply.status,
                c.excerpt(&reply.body)
            ))),
            st => Err(NetError::new(NetKind::Status(st), format!("POST {route}"), c.shown())
                .detail(c.excerpt(&reply.body))
                .hint("not sent again, since the job may have been created anyway (check the endpoint's requests in the RunPod console)")
                .into()),
        }
    }

    /// Fetches `/status/{id}` and interprets the HTTP status (404 for a known job: it expired).
    pub async fn fetch_status(&self, id: &str, known: bool, ev: &dyn Events) -> Result<Vec<u8>> {
        let c = &self.client;
        let reply = c.status(id, ev).await?;
        match reply.status {
            200..=299 => Ok(reply.body),
            404 if known => Err(Error::Failed(format!(
                "job {id} is gone (HTTP 404 from /status): its result expired (RunPod keeps /run results 30 minutes and /runsync results 1 minute after completion) or its TTL ran out (default 24 h from submission, queue time included; see --ttl)"
            ))),
            404 => Err(Error::NotFound(format!(
                "no job {id} at {} (HTTP 404): the ID is unknown, its result expired (kept 30 minutes after /run, 1 minute after /runsync), its TTL ran out, or the endpoint is wrong ({})",
                c.shown(),
                c.excerpt(&reply.body)
            ))),
            st => Err(NetError::new(NetKind::Status(st), format!("GET /status/{id}"), c.shown())
                .detail(c.excerpt(&reply.body))
                .into()),
        }
    }

    pub fn parse_job<'a>(&self, body: &'a [u8]) -> Result<JobBody<'a>> {
        JobBody::parse(body).map_err(|e| {
            NetError::new(NetKind::BadAnswer, "a job answer", self.client.shown())
                .detail(format!("{e}: {}", self.client.excerpt(body)))
                .into()
        })
    }

    /// Acts on a final status: a COMPLETED job's outputs located in the body; everything else an
    /// error that says what happened and what to do.
    fn finished(
        &self,
        id: &str,
        body: Vec<u8>,
        ev: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Finished> {
        let job = self.parse_job(&body)?;
        let parsed = match job.output() {
            Some(raw) => Some(response::parse_output(raw).map_err(|e| {
                Error::Failed(format!(
                    "job {id}: the worker's output is unreadable: {}",
                    self.client.scrub(&e)
                ))
            })?),
            None => None,
        };
        match job.status() {
            "COMPLETED" => {}
            "FAILED" => {
                let mut msg = job
                    .error
                    .as_ref()
                    .map(response::format_error)
                    .unwrap_or_else(|| "no error message".into());
                if let Some(oe) = parsed.as_ref().and_then(|p| p.error.as_ref()) {
                    if !msg.contains(oe.as_str()) {
                        msg.push_str(&format!("\n  {oe}"));
                    }
                }
                let msg = self.client.endpoint.secrets.scrub(&msg);
                // The runpod SDK's words, not ours: its local server forgets a job it ran.
                if msg == "Job ID not found" && self.client.is_local_sdk() {
                    return Err(Error::Failed(format!(
                        "job {id}: the runpod SDK's local test server no longer knows it (it forgets a job once POST /status has run it, e.g. after a retried poll, and /runsync jobs are never stored)"
                    )));
                }
                if is_validation_error(&msg) {
                    return Err(Error::Rejected {
                        target: format!("RunPod job {id}"),
                        message: format!("the worker refused the workflow: {msg}"),
                        diagnostics: Vec::new(),
                    });
                }
                return Err(Error::Failed(format!("job {id} FAILED: {msg}")));
            }
            "CANCELLED" => {
                return Err(Error::Failed(format!(
                    "job {id} was CANCELLED (by comfyctl cancel, the RunPod console or the API)"
                )))
            }
            "TIMED_OUT" => {
                return Err(Error::Failed(format!(
                    "job {id} TIMED_OUT: it ran longer than its execution timeout (endpoint default 10 min; raise it per job with --execution-timeout) or was not picked up before its TTL ran out (--ttl)"
                )))
            }
            other => {
                return Err(Error::Failed(format!(
                    "job {id} ended with unknown status '{}'",
                    crate::redacted::escape_controls(other)
                )))
            }
        }
        let Some(output) = parsed else {
            return Err(Error::Failed(format!(
                "job {id} is COMPLETED but has no output: the worker's result upload was most likely rejected as too large (RunPod takes about 10 MB of result from /run, 20 MB from /runsync, base64 included); switch the worker to S3 output (set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY on the endpoint) or produce smaller or fewer files"
            )));
        };
        let warnings: Vec<String> = output
            .warnings
            .iter()
            .map(|w| self.client.scrub(w.trim_end()))
            .collect();
        for w in &warnings {
            ev.emit(Event::Warn(format!("worker: {w}")));
            r.warnings.push(w.clone());
        }
        if let Some(e) = &output.error {
            return Err(Error::Failed(format!(
                "job {id} reported an error: {}",
                self.client.scrub(e)
            )));
        }
        if let Some(n) = &output.note {
            ev.emit(Event::Note(
                0,
                format!("worker says: {}", self.client.scrub(n)),
            ));
        }
        let base = body.as_ptr() as usize;
        let mut files = Vec::new();
        for f in &output.files {
            let loc = match &f.source {
                Source::Base64(std::borrow::Cow::Borrowed(s)) => {
                    let start = s.as_ptr() as usize - base;
                    Loc::InBody(start..start + s.len())
                }
                Source::Base64(std::borrow::Cow::Owned(s)) => Loc::Owned(s.clone()),
                Source::Url(u) => Loc::Url(u.clone()),
                Source::WorkerPath(p) => {
                    return Err(Error::Failed(format!(
                        "output '{}' ({}): the worker returned a path on its own disk ('{}') instead of a URL: its S3 upload is not configured (set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint); nothing was saved for it",
                        self.client.scrub(&f.name),
                        f.place,
                        self.client.scrub(p)
                    )))
                }
            };
            files.push((f.name.clone(), loc));
        }
        let status = output.status.clone();
        drop(output);
        drop(job);
        Ok(Finished {
            body,
            files,
            status,
            warnings,
        })
    }
}

fn describe_state(status: &str) -> &str {
    match status {
        "IN_QUEUE" => "in queue, waiting for a worker",
        "IN_PROGRESS" | "RUNNING" => "running",
        other => other,
    }
}

/// Records times and status of an answer in the result.
fn note_job(r: &mut JobResult, job: &JobBody) {
    r.remote_status = job.status.clone();
    if let Some(d) = job.delay_ms() {
        r.timings.queue_wait_s = Some(d as f64 / 1000.0);
    }
    if let Some(e) = job.execution_ms() {
        r.timings.run_s = Some(e as f64 / 1000.0);
    }
    if job.worker_id.is_some() {
        r.worker_id = job.worker_id.clone();
    }
}

fn show_times(ev: &dyn Events, job: &JobBody) {
    let mut parts = Vec::new();
    if let Some(d) = job.delay_ms() {
        parts.push(format!("queue wait {:.1} s", d as f64 / 1000.0));
    }
    if let Some(e) = job.execution_ms() {
        parts.push(format!("execution {:.1} s", e as f64 / 1000.0));
    }
    let st = crate::redacted::escape_controls(job.status());
    if parts.is_empty() {
        ev.emit(Event::Note(0, format!("job {st}")));
    } else {
        ev.emit(Event::Note(0, format!("job {st} ({})", parts.join(", "))));
    }
}

/// Whether a FAILED job's error is worker-comfyui refusing the workflow. The worker sends no
/// error code, so its own message prefixes are the only signal (this reads the server's words,
/// never comfyctl's own).
fn is_validation_error(msg: &str) -> bool {
    msg.starts_with("Workflow validation failed")
        || msg.contains("Cannot execute because node")
        || msg.starts_with("Missing 'workflow' parameter")
        || msg.starts_with("'images' must be a list")
}
