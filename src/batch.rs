//! `comfyctl batch`: many jobs from one file, run on RunPod's own queue and workers, or spread
//! over several ComfyUI servers in an order that keeps models loaded; resumable from a journal
//! without paying twice for a job.
//!
//! - [`jobs`]: reading the job file (JSON Lines or CSV); every line checked before anything runs.
//! - [`plan`]: preparing every job once, and the cache-aware order (model keys).
//! - [`journal`]: the fsynced record of every remote step, and what a re-run does with it.
//!
//! Every job runs through the same [`crate::engine`] as `send`, so it is checked, submitted,
//! followed, saved and cancelled the same way, and reports the same result.

pub mod jobs;
pub mod journal;
pub mod plan;
pub mod report;

use crate::cancel::Cancel;
use crate::comfy::ComfyTarget;
use crate::engine::{self, Event, Events, JobOptions, Step, Target};
use crate::error::{exit, Error, Result};
use crate::inject::InjectOptions;
use crate::net::NetKind;
use crate::outputs::OutputDir;
use crate::report::Reporter;
use crate::result::JobResult;
use crate::runpod::RunpodTarget;
use crate::settings::{ComfyServer, Preflight, RunpodEndpoint, RunpodOptions};
use futures_util::StreamExt;
use journal::{Journal, State};
use plan::Planned;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where a batch runs.
#[derive(Debug, Clone)]
pub enum BatchTarget {
    /// One or more ComfyUI servers.
    Comfy(Vec<ComfyServer>),
    /// A RunPod endpoint (its own queue spreads jobs over its workers).
    Runpod(Box<RunpodEndpoint>),
}

/// Everything `batch` needs, resolved.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    pub jobs: PathBuf,
    pub state: PathBuf,
    pub target: BatchTarget,
    /// Jobs in flight (RunPod), default 4; ComfyUI: per server, one running and one queued.
    pub in_flight: Option<usize>,
    pub out_dir: PathBuf,
    pub overwrite: bool,
    pub allow_empty: bool,
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub retry_failed: bool,
    pub resubmit_unknown: bool,
    pub dry_run: bool,
    pub client_id: String,
    pub workflow: Option<PathBuf>,
    pub defaults: InjectOptions,
    pub names: Option<PathBuf>,
    pub object_info: Option<PathBuf>,
    pub preflight: Preflight,
    pub runpod: RunpodOptions,
    /// Write a self-contained HTML gallery of the batch here.
    pub report: Option<PathBuf>,
}

/// What a job's journal state means for this run.
#[derive(Debug, Clone, PartialEq)]
enum Todo {
    Run,
    /// Attach to this remote ID (on this target, when the journal names one); `confirmed`: the
    /// server accepted it (else comfyctl chose the ID and the run died before the answer).
    Attach {
        remote: String,
        target: Option<String>,
        confirmed: bool,
    },
    SkipDone,
    SkipFailed,
    Unknown,
}

/// Runs a batch; the exit code is 0 only when every job succeeded.
pub fn run(s: &BatchSettings) -> Result<i32> {
    let reporter = Reporter::new(s.quiet, s.verbose);
    let (name, text, base) = read_jobs(&s.jobs)?;
    let (mut lines, mut errors) = jobs::parse(&text, &base);
    for l in &mut lines {
        apply_defaults(&mut l.inject, &s.defaults);
    }
    let table = crate::job::load_names(s.names.as_deref())?;
    let (planned, more) = plan::prepare_all(
        lines,
        s.workflow.as_deref(),
        &table,
        s.object_info.as_deref(),
        &reporter,
    );
    errors.extend(more);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        let list: Vec<String> = errors.iter().map(|e| format!("  {name}: {e}")).collect();
        return Err(Error::Usage(format!(
            "{name}: {} problem{} in the job file; nothing was sent:\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            list.join("\n")
        )));
    }
    if planned.is_empty() {
        return Err(Error::Usage(format!("{name}: no jobs in the file")));
    }
    let (journal, states) = Journal::open(&s.state)?;
    let todo: Vec<Todo> = planned
        .iter()
        .map(|p| match states.get(&p.line.id) {
            None => Todo::Run,
            Some(State::Finished { .. }) => Todo::SkipDone,
            Some(State::Failed { .. }) if s.retry_failed => Todo::Run,
            Some(State::Failed { .. }) => Todo::SkipFailed,
            Some(State::Accepted { remote, target }) => Todo::Attach {
                remote: remote.clone(),
                target: target.clone(),
                confirmed: true,
            },
            // ComfyUI: the ID was chosen before the request; look for it, else it never arrived.
            Some(State::Submitting {
                remote: Some(r),
                target,
            }) => Todo::Attach {
                remote: r.clone(),
                target: target.clone(),
                confirmed: false,
            },
            Some(State::Submitting { remote: None, .. }) if s.resubmit_unknown => Todo::Run,
            Some(State::Submitting { remote: None, .. }) => Todo::Unknown,
        })
        .collect();
    let servers = match &s.target {
        BatchTarget::Comfy(v) => v.len(),
        BatchTarget::Runpod(_) => 1,
    };
    let active: Vec<usize> = (0..planned.len())
        .filter(|&i| matches!(todo[i], Todo::Run | Todo::Attach { .. }))
        .collect();
    let refs: Vec<&Planned> = active.iter().map(|&i| &planned[i]).collect();
    let order: Vec<Vec<usize>> = plan::schedule(&refs, servers)
        .into_iter()
        .map(|v| v.into_iter().map(|k| active[k]).collect())
        .collect();
    let naive = naive_loads(&refs, servers);
    let scheduled: usize = order
        .iter()
        .map(|v| plan::loads(v.iter().map(|&i| planned[i].key.clone())))
        .sum();
    if s.dry_run {
        print_plan(s, &planned, &todo, &order, naive, scheduled);
        return Ok(exit::OK);
    }
    OutputDir::new(&s.out_dir, s.overwrite)?;
    let rt = crate::cancel::runtime()?;
    let run = Run {
        s,
        planned: &planned,
        todo: &todo,
        journal: &journal,
        reporter: &reporter,
        dirs: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        failed: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        total: active.len(),
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        loaders_run: AtomicUsize::new(0),
        t0: Instant::now(),
        cards: Mutex::new(Vec::new()),
    };
    let unknown: Vec<String> = (0..planned.len())
        .filter(|&i| todo[i] == Todo::Unknown)
        .map(|i| planned[i].line.id.clone())
        .collect();
    for id in &unknown {
        reporter.warn(format!(
            "job {id}: its submit may have reached RunPod but no job ID was recorded (the run was killed mid-request); it is not sent again, so as not to pay twice. Check the endpoint's requests in the RunPod console, then re-run with --resubmit-unknown to send it anyway"
        ));
    }
    let skipped = todo.iter().filter(|t| **t == Todo::SkipDone).count();
    let skipped_failed: Vec<String> = (0..planned.len())
        .filter(|&i| todo[i] == Todo::SkipFailed)
        .map(|i| planned[i].line.id.clone())
        .collect();
    if skipped > 0 || !skipped_failed.is_empty() {
        reporter.info(format!(
            "{}: {skipped} job(s) already finished, {} failed earlier (--retry-failed runs them again); {} to run",
            journal.path().display(),
            skipped_failed.len(),
            active.len()
        ));
    }
    let cancel_reason = rt.block_on(async {
        let cancel = Cancel::install(None);
        match &s.target {
            BatchTarget::Runpod(ep) => {
                let t = RunpodTarget::new(
                    (**ep).clone(),
                    s.runpod.clone(),
                    &s.client_id,
                    s.object_info.clone(),
                    None,
                    &s.out_dir,
                )?;
                let j = s.in_flight.unwrap_or(4).max(1);
                futures_util::stream::iter(order.into_iter().flatten())
                    .for_each_concurrent(j, |i| {
                        let t = &t;
                        let run = &run;
                        let cancel = &cancel;
                        async move {
                            if !cancel.is_cancelled() {
                                let _ = run.one(t, i, "run", cancel, false).await;
                            }
                        }
                    })
                    .await;
            }
            BatchTarget::Comfy(list) => {
                let targets: Vec<ComfyTarget> = list
                    .iter()
                    .map(|srv| {
                        ComfyTarget::new(
                            srv.clone(),
                            &s.client_id,
                            false,
                            s.object_info.clone(),
                            s.verbose,
                            &s.out_dir,
                        )
                        .map(ComfyTarget::without_websocket)
                    })
                    .collect::<Result<_>>()?;
                let queues: Vec<Mutex<VecDeque<usize>>> =
                    order.into_iter().map(|v| Mutex::new(v.into())).collect();
                let alive: Vec<AtomicBool> =
                    targets.iter().map(|_| AtomicBool::new(true)).collect();
                let per_server = s.in_flight.unwrap_or(2).max(1);
                let workers = (0..targets.len()).flat_map(|srv| (0..per_server).map(move |_| srv));
                let shared: Shared = (&targets[..], &queues[..], &alive[..], &run, &cancel);
                futures_util::future::join_all(workers.map(|srv| comfy_worker(srv, shared))).await;
            }
        }
        Ok::<_, Error>(cancel.reason())
    })?;
    let line = run.summary(
        &unknown,
        &skipped_failed,
        skipped,
        naive,
        scheduled,
        servers,
    );
    if let Some(page) = &s.report {
        let mut cards = run.cards.lock().expect("not poisoned").clone();
        for (i, p) in planned.iter().enumerate() {
            let status = match (&todo[i], states.get(&p.line.id)) {
                (Todo::SkipDone, Some(State::Finished { detail })) => {
                    let outputs = detail
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| {
                            Some((
                                PathBuf::from(o.get("path")?.as_str()?),
                                o.get("format")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string(),
                            ))
                        })
                        .collect();
                    cards.push(report::Card {
                        outputs,
                        ..run.card(i, "finished earlier")
                    });
                    continue;
                }
                (Todo::SkipFailed, Some(State::Failed { detail })) => {
                    cards.push(report::Card {
                        error: detail
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        ..run.card(i, "failed")
                    });
                    continue;
                }
                (Todo::Unknown, _) => "unknown",
                _ => continue,
            };
            cards.push(run.card(i, status));
        }
        cards.sort_by_key(|c| c.line);
        let dir = page
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("--report {}", page.display()), e))?;
        let html = report::render(&format!("comfyctl batch: {name}"), &cards, &dir, &line);
        crate::outputs::write_atomic(page, html.as_bytes())?;
        reporter.info(format!("report: {}", page.display()));
    }
    if let Some(r) = cancel_reason {
        return Err(Error::Interrupted(format!(
            "{}; in-flight jobs were cancelled; re-run the same command to resume",
            match r {
                crate::cancel::Reason::Signal(s) => s.to_string(),
                crate::cancel::Reason::Timeout(_) => "timeout".to_string(),
            }
        )));
    }
    let ok = run.failed.lock().expect("not poisoned").is_empty()
        && unknown.is_empty()
        && skipped_failed.is_empty();
    Ok(if ok { exit::OK } else { exit::FAILED })
}

type Shared<'a> = (
    &'a [ComfyTarget],
    &'a [Mutex<VecDeque<usize>>],
    &'a [AtomicBool],
    &'a Run<'a>,
    &'a Cancel,
);

/// One worker slot of a ComfyUI server: runs its server's jobs in scheduled order; when they run
/// out, takes a whole model group from the server with the most left; when the server stops
/// answering, takes it out and hands its jobs to the others.
async fn comfy_worker(srv: usize, (targets, queues, alive, run, cancel): Shared<'_>) {
    loop {
        if cancel.is_cancelled() || !alive[srv].load(Ordering::SeqCst) {
            return;
        }
        let next = queues[srv].lock().expect("not poisoned").pop_front();
        let i = match next.or_else(|| steal(srv, queues, alive, run.planned)) {
            Some(i) => i,
            None => return,
        };
        match run.one(&targets[srv], i, "prompt", cancel, true).await {
            Err(e) if server_down(&e) => {
                alive[srv].store(false, Ordering::SeqCst);
                let mut mine: Vec<usize> = queues[srv]
                    .lock()
                    .expect("not poisoned")
                    .drain(..)
                    .collect();
                mine.insert(0, i);
                let others: Vec<usize> = (0..targets.len())
                    .filter(|&o| alive[o].load(Ordering::SeqCst))
                    .collect();
                run.reporter.warn(format!(
                    "{} does not answer ({e}); taken out of the batch, its {} remaining job(s) go to {}",
                    targets[srv].info().url,
                    mine.len(),
                    if others.is_empty() { "no other server".to_string() } else { format!("{} other server(s)", others.len()) }
                ));
                if others.is_empty() {
                    for j in mine {
                        run.record_failure(j, &e);
                    }
                } else {
                    for (k, j) in mine.into_iter().enumerate() {
                        queues[others[k % others.len()]]
                            .lock()
                            .expect("not poisoned")
                            .push_back(j);
                    }
                }
                return;
            }
            _ => {}
        }
    }
}

/// Takes the last model group of the busiest other live server.
fn steal(
    srv: usize,
    queues: &[Mutex<VecDeque<usize>>],
    alive: &[AtomicBool],
    planned: &[Planned],
) -> Option<usize> {
    let victim = (0..queues.len())
        .filter(|&o| o != srv && alive[o].load(Ordering::SeqCst))
        .max_by_key(|&o| queues[o].lock().expect("not poisoned").len())?;
    let mut q = queues[victim].lock().expect("not poisoned");
    let key = planned[*q.back()?].key.clone();
    let mut group = Vec::new();
    while q.back().is_some_and(|&j| planned[j].key == key) && q.len() > 1 {
        group.push(q.pop_back().expect("non-empty"));
    }
    drop(q);
    let first = group.pop()?;
    let mut mine = queues[srv].lock().expect("not poisoned");
    for j in group.into_iter().rev() {
        mine.push_back(j);
    }
    Some(first)
}

/// A failure that means the server is gone, not the job: nothing reached it.
fn server_down(e: &Error) -> bool {
    matches!(e.inner(), Error::Net(n) if n.kind == NetKind::Unreachable)
}

/// Model loads if the jobs ran in file order, spread round-robin over the servers (what a shell
/// loop of `send`s would do).
fn naive_loads(jobs: &[&Planned], servers: usize) -> usize {
    (0..servers.max(1))
        .map(|s| {
            plan::loads(
                jobs.iter()
                    .enumerate()
                    .filter(|(i, _)| i % servers.max(1) == s)
                    .map(|(_, j)| j.key.clone()),
            )
        })
        .sum()
}

fn apply_defaults(job: &mut InjectOptions, d: &InjectOptions) {
    if job.images.is_empty() {
        job.images = d.images.clone();
    }
    if job.prompt.is_none() {
        job.prompt = d.prompt.clone();
    }
    if job.negative.is_none() {
        job.negative = d.negative.clone();
    }
    if job.seed.is_none() {
        job.seed = d.seed;
    }
    let mut sets = d.sets.clone();
    sets.append(&mut job.sets);
    job.sets = sets;
}

fn read_jobs(path: &Path) -> Result<(String, String, PathBuf)> {
    if path.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(|e| Error::Usage(format!("reading the jobs from standard input: {e}")))?;
        return Ok(("<stdin>".into(), t, PathBuf::from(".")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read the job file: {e}", path.display())))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((path.display().to_string(), text, base))
}

fn print_plan(
    s: &BatchSettings,
    planned: &[Planned],
    todo: &[Todo],
    order: &[Vec<usize>],
    naive: usize,
    scheduled: usize,
) {
    let targets: Vec<String> = match &s.target {
        BatchTarget::Comfy(v) => v.iter().map(|x| x.shown()).collect(),
        BatchTarget::Runpod(r) => vec![r.shown.clone()],
    };
    let mut rows = Vec::new();
    for (srv, list) in order.iter().enumerate() {
        for &i in list {
            let p = &planned[i];
            let what = match &todo[i] {
                Todo::Attach { remote, .. } => format!("attach to {remote}"),
                _ => "run".into(),
            };
            rows.push(json!({
                "id": p.line.id, "line": p.line.line, "target": targets[srv.min(targets.len() - 1)],
                "model_key": p.key, "workflow": p.workflow.display().to_string(), "action": what,
            }));
            if !s.json {
                println!(
                    "{:<20} line {:<5} {:<10} model {}  →  {}  ({})",
                    p.line.id,
                    p.line.line,
                    what,
                    p.key,
                    targets[srv.min(targets.len() - 1)],
                    p.workflow.display()
                );
            }
        }
    }
    for (i, p) in planned.iter().enumerate() {
        let what = match todo[i] {
            Todo::SkipDone => "skip: finished earlier",
            Todo::SkipFailed => "skip: failed earlier (--retry-failed)",
            Todo::Unknown => "hold: submit state unknown (--resubmit-unknown)",
            _ => continue,
        };
        if !s.json {
            println!("{:<20} line {:<5} {what}", p.line.id, p.line.line);
        }
        rows.push(json!({"id": p.line.id, "line": p.line.line, "action": what}));
    }
    let groups: std::collections::BTreeSet<&str> = planned.iter().map(|p| p.key.as_str()).collect();
    if s.json {
        crate::report::print_stdout(&json!({"schema_version": 1, "dry_run": true, "jobs": rows, "model_groups": groups.len(), "model_loads": {"scheduled": scheduled, "submission_order": naive}}).to_string());
    } else {
        println!(
            "{} job(s), {} model group(s) on {} target(s); model loads: {scheduled} in this order, {naive} in file order",
            planned.len(),
            groups.len(),
            targets.len()
        );
    }
}

/// The shared state of a running batch.
struct Run<'a> {
    s: &'a BatchSettings,
    planned: &'a [Planned],
    todo: &'a [Todo],
    journal: &'a Journal,
    reporter: &'a Reporter,
    dirs: Mutex<HashMap<PathBuf, Arc<OutputDir>>>,
    done: AtomicUsize,
    failed: Mutex<Vec<String>>,
    running: AtomicUsize,
    total: usize,
    executed: AtomicUsize,
    cached: AtomicUsize,
    loaders_run: AtomicUsize,
    t0: Instant,
    cards: Mutex<Vec<report::Card>>,
}

/// One job's events: journal records for its remote steps, warnings with the job's ID.
struct JobEvents<'a> {
    journal: &'a Journal,
    id: &'a str,
    target: String,
    reporter: &'a Reporter,
}

impl Events for JobEvents<'_> {
    fn emit(&self, e: Event) {
        match e {
            Event::Warn(w) => self.reporter.warn(format!("job {}: {w}", self.id)),
            Event::Note(level, n) => self
                .reporter
                .debug(level.max(1), format!("job {}: {n}", self.id)),
            _ => {}
        }
    }

    fn journal(&self, step: Step) -> Result<()> {
        match step {
            Step::Submitting { remote } => self.journal.append(
                "submitting",
                self.id,
                remote.as_deref(),
                Some(&self.target),
                Value::Null,
            ),
            Step::Accepted { remote } => self.journal.append(
                "accepted",
                self.id,
                Some(&remote),
                Some(&self.target),
                Value::Null,
            ),
        }
    }
}

impl Run<'_> {
    fn dir(&self, i: usize) -> Result<Arc<OutputDir>> {
        let p = match &self.planned[i].line.out {
            Some(sub) => self.s.out_dir.join(sub),
            None => self.s.out_dir.clone(),
        };
        let mut dirs = self.dirs.lock().expect("not poisoned");
        if let Some(d) = dirs.get(&p) {
            return Ok(d.clone());
        }
        let d = Arc::new(OutputDir::new(&p, self.s.overwrite)?.with_hashing(true));
        dirs.insert(p, d.clone());
        Ok(d)
    }

    /// Runs (or re-attaches to) job `i` on `t`, journals its end and reports it. `movable`: a
    /// failure because the server is down is left to the caller, which moves the job to
    /// another server (several ComfyUI servers); otherwise it is the job's failure.
    async fn one<T: Target>(
        &self,
        t: &T,
        i: usize,
        mode: &str,
        cancel: &Cancel,
        movable: bool,
    ) -> Result<()> {
        let p = &self.planned[i];
        let id = p.line.id.as_str();
        let target = t.info().url;
        let opts = JobOptions {
            preflight: self.s.preflight,
            allow_empty: self.s.allow_empty,
            client_id: self.s.client_id.clone(),
            manifest: true,
        };
        let events = JobEvents {
            journal: self.journal,
            id,
            target: target.clone(),
            reporter: self.reporter,
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        self.progress();
        let res = async {
            let out = self.dir(i)?;
            match &self.todo[i] {
                // A journaled ID on another target (a server taken out) cannot be attached here.
                Todo::Attach {
                    remote,
                    target: on,
                    confirmed,
                } if on.as_deref().is_none_or(|o| o == target) => {
                    match engine::attach_job(t, remote, &out, &opts, cancel, &events).await {
                        // Chosen but never queued (killed between the journal and the request):
                        // it never reached the server, so it runs now, under a new ID. A job the
                        // server had accepted and no longer knows is a failure, never a resend.
                        Err(e) if !confirmed && matches!(e.inner(), Error::NotFound(_)) => {
                            engine::run_job(t, &p.prepared, &out, &opts, mode, cancel, &events)
                                .await
                        }
                        other => other,
                    }
                }
                _ => engine::run_job(t, &p.prepared, &out, &opts, mode, cancel, &events).await,
            }
        }
        .await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        match res {
            Ok(r) => {
                self.finished(i, &r);
                Ok(())
            }
            Err(e) => {
                if !(movable && server_down(&e)) || cancel.is_cancelled() {
                    self.record_failure(i, &e);
                }
                Err(e)
            }
        }
    }

    fn finished(&self, i: usize, r: &JobResult) {
        let p = &self.planned[i];
        let outputs: Vec<Value> = r
            .outputs
            .iter()
            .map(|o| json!({"path": o.path, "bytes": o.bytes, "format": o.format}))
            .collect();
        if let Err(e) = self.journal.append(
            "finished",
            &p.line.id,
            r.job_id.as_deref(),
            Some(&r.target.url),
            Value::Array(outputs),
        ) {
            self.reporter.warn(format!("job {}: {e}", p.line.id));
        }
        if let Some(n) = &r.nodes {
            self.executed.fetch_add(n.executed, Ordering::SeqCst);
            self.cached.fetch_add(n.cached, Ordering::SeqCst);
            let loaders = n
                .executed_ids
                .iter()
                .filter(|id| p.prepared.class_type(id).is_some_and(plan::is_loader))
                .count();
            self.loaders_run.fetch_add(loaders, Ordering::SeqCst);
        }
        self.done.fetch_add(1, Ordering::SeqCst);
        self.cards.lock().expect("not poisoned").push(report::Card {
            target: Some(r.target.url.clone()),
            outputs: r
                .outputs
                .iter()
                .map(|o| (o.path.clone(), o.format.clone()))
                .collect(),
            nodes: r.nodes.as_ref().map(|n| (n.executed, n.cached)),
            total_s: Some(r.timings.total_s),
            ..self.card(i, "completed")
        });
        self.reporter.info(format!(
            "job {}: completed on {} ({} file{}{})",
            p.line.id,
            r.target.url,
            r.outputs.len(),
            if r.outputs.len() == 1 { "" } else { "s" },
            r.nodes
                .as_ref()
                .map(|n| format!(", {} node(s) ran, {} cached", n.executed, n.cached))
                .unwrap_or_default()
        ));
        if self.s.json {
            let mut v = r.to_value();
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), p.line.id.clone().into());
                o.insert("line".into(), p.line.line.into());
                o.insert("model_key".into(), p.key.clone().into());
            }
            crate::report::print_stdout(&v.to_string());
        }
        self.progress();
    }

    fn record_failure(&self, i: usize, e: &Error) {
        let p = &self.planned[i];
        if let Err(je) = self
            .journal
            .append("failed", &p.line.id, None, None, e.to_json())
        {
            self.reporter.warn(format!("job {}: {je}", p.line.id));
        }
        self.failed
            .lock()
            .expect("not poisoned")
            .push(p.line.id.clone());
        self.cards.lock().expect("not poisoned").push(report::Card {
            error: Some(e.to_string()),
            ..self.card(i, "failed")
        });
        self.reporter.warn(format!(
            "job {} (line {}) failed: {e}",
            p.line.id, p.line.line
        ));
        if self.s.json {
            let mut v = crate::result::error_document(e);
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), p.line.id.clone().into());
                o.insert("line".into(), p.line.line.into());
                o.insert("model_key".into(), p.key.clone().into());
            }
            crate::report::print_stdout(&v.to_string());
        }
        self.progress();
    }

    /// A report card with what the job file says about job `i`.
    fn card(&self, i: usize, status: &str) -> report::Card {
        let p = &self.planned[i];
        report::Card {
            id: p.line.id.clone(),
            line: p.line.line,
            status: status.into(),
            prompt: p.line.inject.prompt.clone(),
            seed: p.prepared.plan.seed,
            ..report::Card::default()
        }
    }

    fn progress(&self) {
        let done = self.done.load(Ordering::SeqCst);
        let failed = self.failed.lock().expect("not poisoned").len();
        let running = self.running.load(Ordering::SeqCst);
        let finished = done + failed;
        let elapsed = self.t0.elapsed().as_secs_f64();
        let eta = if finished > 0 && finished < self.total {
            format!(
                ", ETA {:.0}s",
                elapsed / finished as f64 * (self.total - finished) as f64
            )
        } else {
            String::new()
        };
        self.reporter.status(format!(
            "{finished}/{} done ({done} ok, {failed} failed), {running} running, {} waiting{eta}",
            self.total,
            self.total.saturating_sub(finished + running)
        ));
    }

    fn summary(
        &self,
        unknown: &[String],
        skipped_failed: &[String],
        skipped: usize,
        naive: usize,
        scheduled: usize,
        servers: usize,
    ) -> String {
        self.reporter.finish();
        let failed = self.failed.lock().expect("not poisoned").clone();
        let done = self.done.load(Ordering::SeqCst);
        let mut failed_ids = failed.clone();
        failed_ids.extend(skipped_failed.iter().cloned());
        let v = json!({
            "schema_version": 1,
            "summary": true,
            "jobs": self.planned.len(),
            "succeeded": done,
            "failed": failed_ids.len(),
            "skipped_finished": skipped,
            "unknown": unknown.len(),
            "failed_ids": failed_ids,
            "unknown_ids": unknown,
            "nodes": {
                "executed": self.executed.load(Ordering::SeqCst),
                "cached": self.cached.load(Ordering::SeqCst),
                "loaders_executed": self.loaders_run.load(Ordering::SeqCst),
            },
            "model_loads": {"scheduled": scheduled, "submission_order": naive, "servers": servers},
            "state": self.journal.path(),
            "elapsed_s": crate::result::secs(self.t0.elapsed()),
        });
        let line = format!(
            "batch: {done} succeeded, {} failed{}, {skipped} already done, {} unknown in {:.1}s; models loaded {scheduled} time(s) in this order vs {naive} in file order; {} node(s) ran, {} cached, {} loader run(s)",
            failed_ids.len(),
            if failed_ids.is_empty() { String::new() } else { format!(" ({})", failed_ids.join(", ")) },
            unknown.len(),
            self.t0.elapsed().as_secs_f64(),
            self.executed.load(Ordering::SeqCst),
            self.cached.load(Ordering::SeqCst),
            self.loaders_run.load(Ordering::SeqCst),
        );
        self.reporter.info(&line);
        if self.s.json {
            crate::report::print_stdout(&v.to_string());
        }
        line
    }
}
