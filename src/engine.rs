//! The job engine: one way to run a prepared job on any target — check, submit, follow, fetch
//! and save the outputs, cancel — shared by `send` (one job) and everything built on it.
//!
//! A [`Target`] (a ComfyUI server, a RunPod endpoint) knows its protocol; [`run_job`] knows the
//! order of things and the promises: nothing is submitted before the workflow and the output
//! directory have been checked, the remote job is cancelled when the run is (Ctrl-C, SIGTERM,
//! SIGHUP, `--timeout`), outputs are saved through the one path in [`crate::outputs`], and the
//! result is the one [`JobResult`] whatever the target.

use crate::cancel::Cancel;
use crate::diagnostic::{Diagnostic, Severity};
use crate::error::{Error, Result};
use crate::job::Prepared;
use crate::outputs::{Body, OutputDir, SaveError};
use crate::report::{human_bytes, Reporter};
use crate::result::{secs, JobResult, TargetInfo};
use crate::schema::Schema;
use crate::settings::Preflight;
use std::time::{Duration, Instant};

/// What happens to a job, as a target reports it while following.
#[derive(Debug, Clone)]
pub enum Event {
    /// The request that creates the job is going out.
    Submitting(String),
    /// Waiting: `position` in ComfyUI's queue when known, else a description.
    Queued {
        position: Option<u64>,
        detail: String,
    },
    /// The job started running.
    Started(String),
    /// A node is running (label as in messages).
    Node(String),
    /// Step progress of the running node.
    Progress { value: u64, max: u64 },
    /// Nodes taken from ComfyUI's cache.
    Cached(usize),
    /// An output is being fetched.
    Fetching(String),
    /// A message worth seeing (0) or detail for `-v` (1) / `-vv` (2).
    Note(u8, String),
    /// A warning.
    Warn(String),
}

/// A remote step about to happen or just confirmed, for a journal that must hold it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The request that creates the job is about to go out; `remote` is the ID comfyctl chose
    /// for it (ComfyUI), or `None` when only the answer will tell (RunPod).
    Submitting { remote: Option<String> },
    /// The server confirmed the job under this ID.
    Accepted { remote: String },
}

/// Where a target's events go.
pub trait Events: Sync {
    fn emit(&self, e: Event);

    /// Records a remote step durably *before* the target goes on; an error stops the job
    /// before the step (nothing is submitted that the journal does not know about).
    fn journal(&self, _step: Step) -> Result<()> {
        Ok(())
    }
}

impl Events for Reporter {
    fn emit(&self, e: Event) {
        match e {
            Event::Submitting(s) | Event::Started(s) | Event::Fetching(s) => self.status(s),
            Event::Queued { position, detail } => self.status(match position {
                Some(n) => format!("queued, position {n}"),
                None => detail,
            }),
            Event::Node(label) => self.status(format!("running {label}")),
            Event::Progress { value, max } => self.progress(value, max),
            Event::Cached(n) => self.debug(
                1,
                format!("{n} node{} from the cache", if n == 1 { "" } else { "s" }),
            ),
            Event::Note(0, s) => self.info(s),
            Event::Note(level, s) => self.debug(level, s),
            Event::Warn(s) => self.warn(s),
        }
    }
}

/// A job that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Running (else waiting in a queue).
    pub running: bool,
    /// The state in words (`IN_QUEUE (in queue, waiting for a worker)`, `queued, position 2`).
    pub detail: String,
}

/// One output a finished job lists.
#[derive(Debug, Clone)]
pub struct OutputRef {
    /// The name the server gave it.
    pub name: String,
    /// The node that produced it, when known.
    pub node: Option<String>,
    /// Target-specific locator (index into the finished job's outputs).
    pub index: usize,
}

/// A ComfyUI server or a RunPod endpoint, as the engine drives it.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// A submitted job being followed.
    type Remote;
    /// A job that finished successfully, with what is needed to fetch its outputs.
    type Finished;

    fn info(&self) -> TargetInfo;

    /// The node schema to check the workflow against before submitting, when there is one.
    async fn schema(&self, policy: Preflight, events: &dyn Events) -> Result<Option<Schema>>;

    /// Creates the remote job (uploading inputs first where the target needs them). Sets
    /// `r.job_id` as soon as the ID is known — for ComfyUI before the request goes out — so a
    /// cancel at any moment finds the job.
    async fn submit(
        &self,
        job: &Prepared,
        events: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Self::Remote>;

    /// Picks up a job that already exists (`status ID`, a resumed batch).
    async fn attach(
        &self,
        id: &str,
        events: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Self::Remote>;

    /// One look at an attached job: `None` when it has ended (then [`Target::follow`] returns at
    /// once), else whether it waits or runs.
    async fn peek(
        &self,
        remote: &mut Self::Remote,
        events: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Option<Pending>>;

    /// Follows the job until it ends. A job that failed, was cancelled or vanished is an error
    /// that names the node and the fix; success fills the result (nodes, times, status).
    async fn follow(
        &self,
        remote: Self::Remote,
        job: Option<&Prepared>,
        events: &dyn Events,
        r: &mut JobResult,
    ) -> Result<Self::Finished>;

    /// The outputs the finished job lists.
    fn outputs(&self, fin: &Self::Finished) -> Result<Vec<OutputRef>>;

    /// Why a finished job has no outputs (the error when `--allow-empty` was not given).
    fn no_outputs(&self, fin: &Self::Finished, id: &str) -> Error;

    /// Starts fetching one output. Fetching is idempotent: the engine retries what
    /// [`SaveError::retryable`] says may work.
    async fn fetch<'a>(
        &'a self,
        fin: &'a Self::Finished,
        o: &OutputRef,
    ) -> std::result::Result<Body<'a>, SaveError>;

    /// Cancels the remote job; says what was done, for the error message.
    async fn cancel(&self, id: &str) -> String;

    /// The command that saves a finished job's outputs later, as it can be pasted.
    fn refetch_command(&self, id: &str) -> String;

    /// The command that cancels the job later, as it can be pasted, when there is one.
    fn cancel_command(&self, id: &str) -> Option<String>;

    /// What the target says about itself, for the manifest (ComfyUI: version, device, cache
    /// mode, the schema of the classes `job` uses, the server-side image names; RunPod: the
    /// endpoint). Best effort and cheap: never an error, `null` when nothing is known.
    async fn facts(&self, _job: &Prepared) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// How one job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub preflight: Preflight,
    pub allow_empty: bool,
    pub client_id: String,
    /// Write a manifest beside the outputs after a successful run ([`crate::manifest`]).
    pub manifest: bool,
}

/// Runs one prepared job on `target` and saves its outputs in `out`. Returns the result, or the
/// error wrapped with the result as far as it got ([`JobResult::fail`]).
pub async fn run_job<T: Target>(
    target: &T,
    job: &Prepared,
    out: &OutputDir,
    opts: &JobOptions,
    mode: &str,
    cancel: &Cancel,
    events: &dyn Events,
) -> Result<JobResult> {
    let t0 = Instant::now();
    let mut r = JobResult::new("send", target.info(), mode);
    r.client_id = Some(opts.client_id.clone());
    let tracked = Tracked::new(events);
    let outcome = {
        let mut flow = std::pin::pin!(flow(target, job, out, opts, &tracked, &mut r));
        let cancelled = tokio::select! {
            res = &mut flow => Ok(res),
            reason = cancel.cancelled() => Err(reason),
        };
        match cancelled {
            // A cancel while the request that creates the job is in flight: dropping it now
            // would leave a job running that nobody can cancel (its ID is in the answer). Give
            // the answer a bounded grace, then cancel the job by its ID.
            Err(reason) if tracked.in_flight() => {
                events.emit(Event::Note(
                    0,
                    "waiting up to 35 s for the submit's answer, to cancel the job it created"
                        .into(),
                ));
                let grace = tokio::time::sleep(SUBMIT_GRACE);
                tokio::pin!(grace);
                loop {
                    tokio::select! {
                        res = &mut flow => break Ok(res),
                        _ = &mut grace => break Err(reason),
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {
                            if tracked.accepted().is_some() {
                                break Err(reason);
                            }
                        }
                    }
                }
            }
            other => other,
        }
    };
    // An answer that arrived in the grace: the job ID to cancel.
    if r.job_id.is_none() {
        r.job_id = tracked.accepted();
    }
    let lost_submit = tracked.in_flight();
    r.timings.total_s = secs(t0.elapsed());
    match outcome {
        Ok(Ok(facts)) => {
            r.status = "completed".into();
            if opts.manifest {
                match crate::manifest::write(out.path(), &crate::manifest::build(job, &r, &facts)) {
                    Ok(p) => r.manifest = Some(p),
                    Err(e) => {
                        let w = format!("no manifest written: {e}");
                        events.emit(Event::Warn(w.clone()));
                        r.warnings.push(w);
                    }
                }
            }
            Ok(r)
        }
        Ok(Err(e)) => Err(r.fail(e)),
        Err(reason) => {
            // The flow is dropped: any half-written output file is deleted with it.
            let what = match (&r.job_id, r.saving) {
                (Some(id), true) => format!(
                    "job {id} had already finished, but not all of its outputs were saved; save them with: {}",
                    target.refetch_command(id)
                ),
                (Some(id), false) => {
                    cancel.set_remote(Some(format!("job {id}")));
                    target.cancel(id).await
                }
                (None, _) if lost_submit => format!(
                    "the request that creates the job was in flight and did not answer in {} s: a job may exist on {}; it cannot be cancelled without its ID, so check the endpoint's requests (RunPod console) or the server's queue",
                    SUBMIT_GRACE.as_secs(),
                    target.info().url
                ),
                (None, _) => "nothing had been submitted yet".into(),
            };
            r.timings.total_s = secs(t0.elapsed());
            Err(r.fail(reason.into_error(&what)))
        }
    }
}

/// Picks up a job that already exists under `id` (a resumed batch): follows it to its end and
/// saves its outputs, cancelling it remotely if the run is cancelled.
pub async fn attach_job<T: Target>(
    target: &T,
    id: &str,
    out: &OutputDir,
    opts: &JobOptions,
    cancel: &Cancel,
    events: &dyn Events,
) -> Result<JobResult> {
    let t0 = Instant::now();
    let mut r = JobResult::new("send", target.info(), "attach");
    r.client_id = Some(opts.client_id.clone());
    let outcome = {
        let flow = async {
            let remote = target.attach(id, events, &mut r).await?;
            let fin = target.follow(remote, None, events, &mut r).await?;
            save_outputs(target, &fin, out, opts.allow_empty, events, &mut r).await
        };
        tokio::select! {
            res = flow => Ok(res),
            reason = cancel.cancelled() => Err(reason),
        }
    };
    r.timings.total_s = secs(t0.elapsed());
    match outcome {
        Ok(Ok(())) => {
            r.status = "completed".into();
            Ok(r)
        }
        Ok(Err(e)) => Err(r.fail(e)),
        Err(reason) => {
            let what = target.cancel(id).await;
            Err(r.fail(reason.into_error(&what)))
        }
    }
}

async fn flow<T: Target>(
    target: &T,
    job: &Prepared,
    out: &OutputDir,
    opts: &JobOptions,
    events: &dyn Events,
    r: &mut JobResult,
) -> Result<serde_json::Value> {
    let t = Instant::now();
    if opts.preflight != Preflight::Off {
        if let Some(schema) = target.schema(opts.preflight, events).await? {
            preflight(&schema, job, target.info(), events, r)?;
            r.timings.preflight_s = Some(secs(t.elapsed()));
        }
    }
    let remote = target.submit(job, events, r).await?;
    // What the server says about itself (for the manifest) is fetched while the job runs.
    let facts = async {
        if opts.manifest {
            target.facts(job).await
        } else {
            serde_json::Value::Null
        }
    };
    let run = async {
        let fin = target.follow(remote, Some(job), events, r).await?;
        save_outputs(target, &fin, out, opts.allow_empty, events, r).await
    };
    let (res, facts) = tokio::join!(run, facts);
    res.map(|()| facts)
}

/// Fetches and saves every output of a finished job (the job is not paid again on failure:
/// fetching is retried, and a local failure says how to save the outputs later).
pub async fn save_outputs<T: Target>(
    target: &T,
    fin: &T::Finished,
    out: &OutputDir,
    allow_empty: bool,
    events: &dyn Events,
    r: &mut JobResult,
) -> Result<()> {
    let t = Instant::now();
    let id = r.job_id.clone().unwrap_or_default();
    let outputs = target.outputs(fin)?;
    if outputs.is_empty() {
        if allow_empty {
            events.emit(Event::Note(0, format!("job {id} returned no files")));
            return Ok(());
        }
        return Err(target.no_outputs(fin, &id));
    }
    r.saving = true;
    let mut failures = Vec::new();
    for o in &outputs {
        events.emit(Event::Fetching(format!(
            "downloading {}",
            crate::redacted::escape_controls(&o.name)
        )));
        let mut attempt = 0u32;
        let saved = loop {
            let res = match target.fetch(fin, o).await {
                Ok(body) => out.save(&o.name, o.node.as_deref(), body).await,
                Err(e) => Err(e),
            };
            match res {
                Err(e) if e.retryable() && attempt < 3 => {
                    attempt += 1;
                    events.emit(Event::Note(
                        1,
                        format!("fetching {}: {e}; retrying", o.name),
                    ));
                    tokio::time::sleep(crate::net::backoff(attempt)).await;
                }
                other => break other,
            }
        };
        match saved {
            Ok(s) => {
                events.emit(Event::Note(
                    0,
                    format!(
                        "saved {} ({}, {}{})",
                        crate::redacted::escape_controls(&s.path.display().to_string()),
                        human_bytes(s.bytes),
                        s.format,
                        s.node
                            .as_deref()
                            .map(|n| format!(", node {}", crate::redacted::escape_controls(n)))
                            .unwrap_or_default()
                    ),
                ));
                r.outputs.push(s);
            }
            Err(SaveError::Local(e)) => {
                r.timings.download_s = Some(secs(t.elapsed()));
                return Err(Error::SaveFailed {
                    message: e.to_string(),
                    refetch: target.refetch_command(&id),
                });
            }
            Err(e) => failures.push(format!(
                "output '{}': {e}; nothing was saved for it",
                crate::redacted::escape_controls(&o.name)
            )),
        }
    }
    r.timings.download_s = Some(secs(t.elapsed()));
    if !failures.is_empty() {
        return Err(Error::Failed(failures.join("\n")));
    }
    Ok(())
}

/// Checks the workflow against the schema; the `image` inputs comfyctl is about to upload are
/// left out of the list check (their names are new to the server).
fn preflight(
    schema: &Schema,
    job: &Prepared,
    target: TargetInfo,
    events: &dyn Events,
    r: &mut JobResult,
) -> Result<()> {
    let nodes = job.nodes_with(|img| img.upload_name.clone());
    let diags = crate::schema::check(schema, &nodes, &job.doc.file);
    let uploaded = |d: &Diagnostic| {
        d.code == "value_not_in_list"
            && d.input.as_deref() == Some("image")
            && job
                .plan
                .images
                .iter()
                .any(|i| d.node_id.as_deref() == Some(i.node.as_str()))
    };
    let (errors, rest): (Vec<_>, Vec<_>) = diags
        .into_iter()
        .filter(|d| !uploaded(d))
        .partition(|d| d.is_error());
    for d in rest.iter().filter(|d| d.severity != Severity::Info) {
        events.emit(Event::Warn(d.to_string()));
        r.warnings.push(d.to_string());
    }
    if !errors.is_empty() {
        return Err(Error::Rejected {
            target: target.url,
            message: "the workflow does not match the server's nodes (preflight check; --no-preflight skips it)".into(),
            diagnostics: errors,
        });
    }
    Ok(())
}

/// How long a cancelled run waits for an in-flight submit's answer (to cancel the job by its
/// ID). RunPod's `/runsync` is held at most 30 s by comfyctl, so this covers it.
pub const SUBMIT_GRACE: Duration = Duration::from_secs(35);

/// The events of one job, with the phase of its submit tracked for the engine.
struct Tracked<'a> {
    inner: &'a dyn Events,
    submitting: std::sync::atomic::AtomicBool,
    accepted: std::sync::Mutex<Option<String>>,
}

impl<'a> Tracked<'a> {
    fn new(inner: &'a dyn Events) -> Self {
        Tracked {
            inner,
            submitting: std::sync::atomic::AtomicBool::new(false),
            accepted: std::sync::Mutex::new(None),
        }
    }

    /// A submit went out and has not been answered.
    fn in_flight(&self) -> bool {
        self.submitting.load(std::sync::atomic::Ordering::SeqCst)
            && self.accepted.lock().expect("not poisoned").is_none()
    }

    fn accepted(&self) -> Option<String> {
        self.accepted.lock().expect("not poisoned").clone()
    }
}

impl Events for Tracked<'_> {
    fn emit(&self, e: Event) {
        self.inner.emit(e)
    }

    fn journal(&self, step: Step) -> Result<()> {
        self.inner.journal(step.clone())?;
        match step {
            Step::Submitting { .. } => self
                .submitting
                .store(true, std::sync::atomic::Ordering::SeqCst),
            Step::Accepted { remote } => {
                *self.accepted.lock().expect("not poisoned") = Some(remote)
            }
        }
        Ok(())
    }
}

/// How long to wait for a cancel request before giving up on it.
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(10);
