//! RunPod serverless: `comfyctl send --endpoint`, `comfyctl status JOB_ID`, `comfyctl cancel JOB_ID`.
//!
//! The flow: build the worker-comfyui request (workflow + inline images), check its size against
//! RunPod's limits *before* uploading, `POST /run` (or `/runsync`), print the job ID at once so a
//! script can resume, poll `/status/{id}` adaptively, then stream every output file to disk.
//! `--timeout`, Ctrl-C and SIGTERM cancel the remote job (`POST /cancel/{id}`) so nobody pays for
//! a result that no one will collect.
//!
//! Submodules: [`client`] (HTTP, auth, retries), [`poll`] (intervals, backoff), [`response`]
//! (borrowed parsing of answers and output shapes), [`save`] (streaming decode/download).

pub mod client;
pub mod poll;
pub mod response;
pub mod save;

use crate::cli::{CancelArgs, SendArgs, StatusArgs};
use crate::error::{Error, Result};
use crate::outputs::{OutputDir, SavedFile};
use crate::report::{human_bytes, Reporter};
use crate::send::Prepared;
use base64::Engine as _;
use client::{Client, Reply};
use response::JobBody;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Request body limit of `/run` (RunPod documents 10 MB).
pub const RUN_LIMIT: usize = 10_000_000;
/// Request body limit of `/runsync` (RunPod documents 20 MB).
pub const RUNSYNC_LIMIT: usize = 20_000_000;

/// What `--json` prints: one object, at the end, for success and failure alike.
#[derive(Debug, Default, Serialize)]
pub struct JobReport {
    /// `completed`, `in_progress`/`in_queue` (status without --wait), `cancelled` (cancel), or `error`.
    pub status: String,
    pub job_id: Option<String>,
    pub endpoint: Option<String>,
    /// The base URL requests went to (never contains the key).
    pub target: String,
    /// `run` or `runsync` (send), `status`, `cancel`.
    pub mode: String,
    /// RunPod's own status word (COMPLETED, FAILED, ...).
    pub runpod_status: Option<String>,
    pub delay_time_ms: Option<u64>,
    pub execution_time_ms: Option<u64>,
    pub worker_id: Option<String>,
    pub outputs: Vec<SavedFile>,
    /// Output files the job announced (status without saving).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<String>,
    pub warnings: Vec<String>,
    pub timings: Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// Wall-clock phases in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub submit_ms: Option<u64>,
    pub wait_ms: Option<u64>,
    pub save_ms: Option<u64>,
    pub total_ms: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Why the flow stopped early.
enum Stop {
    Timeout,
    Signal(&'static str),
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what cron's `timeout` and service managers send).
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "Ctrl-C";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Prints the final result (JSON object or nothing) and turns an error into its exit code, with
/// the job ID attached so a script can resume even after a failure.
fn conclude(r: Result<i32>, mut report: JobReport, json: bool, started: Instant) -> Result<i32> {
    report.timings.total_ms = ms(started.elapsed());
    match r {
        Ok(code) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
            }
            Ok(code)
        }
        Err(e) => {
            if !json {
                return Err(e);
            }
            report.status = "error".into();
            report.error = Some(e.to_json());
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("serializable")
            );
            eprintln!("comfyctl: error: {e}");
            Ok(e.exit_code())
        }
    }
}

/// `comfyctl send --endpoint` / `--runpod-url`.
pub async fn send(args: &SendArgs, prepared: Prepared, reporter: &Reporter) -> Result<i32> {
    let started = Instant::now();
    let mut report = JobReport {
        mode: if args.sync { "runsync" } else { "run" }.into(),
        ..Default::default()
    };
    let r = send_inner(args, &prepared, reporter, &mut report).await;
    reporter.finish();
    conclude(r, report, args.out.json, started)
}

async fn send_inner(
    args: &SendArgs,
    prepared: &Prepared,
    reporter: &Reporter,
    report: &mut JobReport,
) -> Result<i32> {
    let client = Client::new(&args.runpod)?;
    report.target = client.base().to_string();
    report.endpoint = client.endpoint().map(str::to_string);
    let (body, warnings) = build_request(args, prepared)?;
    for w in warnings {
        reporter.warn(&w);
        report.warnings.push(w);
    }
    let (limit, route, other) = if args.sync {
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
    reporter.debug(
        1,
        format!(
            "request: {} to {}{route}",
            human_bytes(body.len() as u64),
            client.base()
        ),
    );
    // Checked before submitting: a bad -o must not cost a paid job.
    let dir = OutputDir::new(&args.out.output_dir, args.out.overwrite)?;
    let job_id = std::sync::Mutex::new(None::<String>);

    let stop = {
        let flow = submit_and_wait(args, &client, &body, &dir, reporter, report, &job_id);
        tokio::select! {
            r = flow => return r,
            _ = tokio::time::sleep(args.timeout) => Stop::Timeout,
            s = shutdown_signal() => Stop::Signal(s),
        }
    };
    // The flow future is dropped here: any half-written output file is deleted with it.
    let id = job_id.lock().expect("not poisoned").clone();
    let finished = report
        .runpod_status
        .as_deref()
        .is_some_and(response::is_final);
    let cancelled = match &id {
        Some(id) if finished => format!(
            " had already finished, but not all of its outputs were saved; fetch them with: comfyctl status {id} --save"
        ),
        Some(id) => cancel_quietly(&client, id, reporter).await,
        None => {
            if args.sync {
                reporter.warn("the /runsync request had not answered yet, so its job ID is unknown and it cannot be cancelled; it may still run");
            }
            String::new()
        }
    };
    let job = id
        .map(|i| format!("job {i}"))
        .unwrap_or_else(|| "the job".into());
    Err(match stop {
        Stop::Timeout => Error::Timeout(format!(
            "no result after {} (--timeout); {job}{cancelled}",
            humantime::format_duration(args.timeout)
        )),
        Stop::Signal(s) => Error::Interrupted(format!("{s}; {job}{cancelled}")),
    })
}

/// Cancels after a timeout or signal; returns a clause for the error message. Bounded to 10 s.
async fn cancel_quietly(client: &Client, id: &str, reporter: &Reporter) -> String {
    if client.is_local_sdk() {
        return " keeps running: the runpod SDK's local test server has no /cancel".into();
    }
    let r = tokio::time::timeout(Duration::from_secs(10), client.cancel(id, reporter)).await;
    match r {
        Ok(Ok(reply)) if reply.status == 200 => " was cancelled".into(),
        Ok(Ok(reply)) => format!(
            " could not be cancelled (HTTP {}: {}); try: comfyctl cancel {id}",
            reply.status,
            client.excerpt(&reply.body)
        ),
        Ok(Err(e)) => format!(" could not be cancelled ({e}); try: comfyctl cancel {id}"),
        Err(_) => format!(" could not be cancelled in 10 s; try: comfyctl cancel {id}"),
    }
}

/// The worker-comfyui request: `{"input": {"workflow", "images", "client_id", ...}, "policy"?, "webhook"?}`.
/// Other `input` keys of a RunPod request file (e.g. `comfy_org_api_key`) are kept, and so are its
/// images unless an injected image has the same name.
/// Also returns warnings: LoadImage nodes whose file travels in no `input.images` entry (the
/// worker then only finds it if its ComfyUI input folder already has it).
pub fn build_request(args: &SendArgs, prepared: &Prepared) -> Result<(Vec<u8>, Vec<String>)> {
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
    input.insert("client_id".into(), Value::String(args.client_id.clone()));
    let mut req = Map::new();
    req.insert("input".into(), Value::Object(input));
    let mut policy = Map::new();
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
    if let Some(t) = args.execution_timeout {
        if t < Duration::from_secs(5) || t > WEEK {
            return Err(Error::Usage(format!(
                "--execution-timeout {}: RunPod accepts 5s to 7 days",
                humantime::format_duration(t)
            )));
        }
        policy.insert("executionTimeout".into(), json!(ms(t)));
    }
    if let Some(t) = args.ttl {
        if t < Duration::from_secs(10) || t > WEEK {
            return Err(Error::Usage(format!(
                "--ttl {}: RunPod accepts 10s to 7 days (it counts from submission and covers queue plus run time)",
                humantime::format_duration(t)
            )));
        }
        policy.insert("ttl".into(), json!(ms(t)));
    }
    if !policy.is_empty() {
        req.insert("policy".into(), Value::Object(policy));
    }
    if let Some(w) = &args.webhook {
        match url::Url::parse(w) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(Error::Usage(format!("--webhook '{w}': not an http(s) URL"))),
        }
        req.insert("webhook".into(), Value::String(w.clone()));
    }
    Ok((
        serde_json::to_vec(&Value::Object(req)).expect("serializable"),
        warnings,
    ))
}

/// Interprets the HTTP status of a submit.
fn check_submit(client: &Client, route: &str, reply: &Reply) -> Result<()> {
    match reply.status {
        200..=299 => Ok(()),
        404 => Err(Error::Usage(format!(
            "no such endpoint: {}{route} answered 404 ({}); check --endpoint / RUNPOD_ENDPOINT_ID, or --runpod-url",
            client.base(),
            client.excerpt(&reply.body)
        ))),
        413 => Err(Error::Usage(format!(
            "RunPod refused the request as too large (HTTP 413): {}",
            client.excerpt(&reply.body)
        ))),
        400 | 422 => Err(Error::Usage(format!(
            "{}{route} refused the request (HTTP {}): {}",
            client.base(),
            reply.status,
            client.excerpt(&reply.body)
        ))),
        st => Err(Error::Server(format!(
            "{}{route} answered HTTP {st}: {}; not sent again, since the job may have been created anyway (check the endpoint's requests in the RunPod console)",
            client.base(),
            client.excerpt(&reply.body)
        ))),
    }
}

/// Fetches `/status/{id}` and interprets the HTTP status (404 for a known job: it expired).
async fn fetch_status(
    client: &Client,
    id: &str,
    known: bool,
    reporter: &Reporter,
) -> Result<Vec<u8>> {
    let reply = client.status(id, reporter).await?;
    match reply.status {
        200..=299 => Ok(reply.body),
        404 if known => Err(Error::Failed(format!(
            "job {id} is gone (HTTP 404 from /status): its result expired (RunPod keeps /run results 30 minutes and /runsync results 1 minute after completion) or its TTL ran out (default 24 h from submission, queue time included; see --ttl)"
        ))),
        404 => Err(Error::Failed(format!(
            "no job {id} at {} (HTTP 404): the ID is unknown, its result expired (kept 30 minutes after /run, 1 minute after /runsync), its TTL ran out, or the endpoint is wrong ({})",
            client.base(),
            client.excerpt(&reply.body)
        ))),
        st => Err(Error::Server(format!(
            "{}/status/{id} answered HTTP {st}: {}",
            client.base(),
            client.excerpt(&reply.body)
        ))),
    }
}

fn parse_job<'a>(client: &Client, body: &'a [u8]) -> Result<JobBody<'a>> {
    JobBody::parse(body).map_err(|e| {
        Error::Server(format!(
            "{}: unexpected answer, {e}: {}",
            client.base(),
            client.excerpt(body)
        ))
    })
}

fn describe_state(status: &str) -> &str {
    match status {
        "IN_QUEUE" => "in queue, waiting for a worker",
        "IN_PROGRESS" | "RUNNING" => "running",
        other => other,
    }
}

/// Records times and status of an answer in the report.
fn note_job(report: &mut JobReport, job: &JobBody) {
    report.runpod_status = job.status.clone();
    report.delay_time_ms = job.delay_ms().or(report.delay_time_ms);
    report.execution_time_ms = job.execution_ms().or(report.execution_time_ms);
    if job.worker_id.is_some() {
        report.worker_id = job.worker_id.clone();
    }
}

async fn submit_and_wait(
    args: &SendArgs,
    client: &Client,
    body: &[u8],
    dir: &OutputDir,
    reporter: &Reporter,
    report: &mut JobReport,
    job_id: &std::sync::Mutex<Option<String>>,
) -> Result<i32> {
    let t0 = Instant::now();
    let (path, route) = if args.sync {
        let wait = ms(args.timeout).clamp(1000, 300_000);
        (format!("runsync?wait={wait}"), "/runsync")
    } else {
        ("run".to_string(), "/run")
    };
    reporter.status(format!("submitting to {}{route}", client.base()));
    let reply = client.submit(&path, body, reporter).await?;
    check_submit(client, route, &reply)?;
    report.timings.submit_ms = Some(ms(t0.elapsed()));
    let mut current = reply.body;
    let id = {
        let job = parse_job(client, &current)?;
        job.id.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
            Error::Server(format!(
                "{}{route} answered without a job ID: {}",
                client.base(),
                client.excerpt(&current)
            ))
        })?
    };
    *job_id.lock().expect("not poisoned") = Some(id.clone());
    report.job_id = Some(id.clone());
    let first_final = response::is_final(parse_job(client, &current)?.status());
    if first_final {
        reporter.info(format!("job ID: {id}"));
    } else {
        reporter.info(format!(
            "job ID: {id} (resume with: comfyctl status {id} --wait; cancel with: comfyctl cancel {id})"
        ));
    }
    let waited = Instant::now();
    let mut schedule = poll::Schedule::new(args.poll_interval);
    let mut last_state = String::new();
    loop {
        let delay = {
            let job = parse_job(client, &current)?;
            note_job(report, &job);
            let st = job.status().to_string();
            if response::is_final(&st) {
                report.timings.wait_ms = Some(ms(waited.elapsed()));
                show_times(reporter, &job);
                let t_save = Instant::now();
                let r = finish_job(client, &id, &job, dir, &args.out, reporter, report).await;
                report.timings.save_ms = Some(ms(t_save.elapsed()));
                return r;
            }
            if st != last_state {
                if !matches!(st.as_str(), "IN_QUEUE" | "IN_PROGRESS" | "RUNNING" | "") {
                    reporter.warn(format!("job {id}: unknown status '{st}', still waiting"));
                }
                last_state = st.clone();
            }
            reporter.status(format!("job {id}: {}", describe_state(&st)));
            schedule.next(&st)
        };
        tokio::time::sleep(delay).await;
        current = fetch_status(client, &id, true, reporter)
            .await
            .map_err(|e| match e {
                // The job itself may be fine: say how to pick it up again.
                Error::Server(m) => Error::Server(format!(
                    "{m}\njob {id} may still be running; resume with: comfyctl status {id} --wait (or cancel it: comfyctl cancel {id})"
                )),
                other => other,
            })?;
    }
}

fn show_times(reporter: &Reporter, job: &JobBody) {
    let mut parts = Vec::new();
    if let Some(d) = job.delay_ms() {
        parts.push(format!("queue wait {:.1} s", d as f64 / 1000.0));
    }
    if let Some(e) = job.execution_ms() {
        parts.push(format!("execution {:.1} s", e as f64 / 1000.0));
    }
    let st = job.status();
    if parts.is_empty() {
        reporter.info(format!("job {st}"));
    } else {
        reporter.info(format!("job {st} ({})", parts.join(", ")));
    }
}

/// Looks like the workflow itself was refused (worker-comfyui's validation messages).
fn is_validation_error(msg: &str) -> bool {
    msg.starts_with("Workflow validation failed")
        || msg.contains("Cannot execute because node")
        || msg.starts_with("Missing 'workflow' parameter")
        || msg.starts_with("'images' must be a list")
}

/// Acts on a final status: saves outputs of a COMPLETED job, turns everything else into an error.
async fn finish_job(
    client: &Client,
    id: &str,
    job: &JobBody<'_>,
    dir: &OutputDir,
    out: &crate::cli::OutputArgs,
    reporter: &Reporter,
    report: &mut JobReport,
) -> Result<i32> {
    let parsed = match job.output() {
        Some(raw) => Some(response::parse_output(raw).map_err(|e| {
            Error::Failed(format!("job {id}: the worker's output is unreadable: {e}"))
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
            if msg == "Job ID not found" && client.is_local_sdk() {
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
                "job {id} ended with unknown status '{other}'"
            )))
        }
    }
    let Some(output) = parsed else {
        return Err(Error::Failed(format!(
            "job {id} is COMPLETED but has no output: the worker's result upload was most likely rejected as too large (RunPod takes about 10 MB of result from /run, 20 MB from /runsync, base64 included); switch the worker to S3 output (set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY on the endpoint) or produce smaller or fewer files"
        )));
    };
    for w in &output.warnings {
        reporter.warn(format!("worker: {}", w.trim_end()));
        report.warnings.push(w.clone());
    }
    if let Some(e) = &output.error {
        return Err(Error::Failed(format!("job {id} reported an error: {e}")));
    }
    if let Some(n) = &output.note {
        reporter.info(format!("worker says: {n}"));
    }
    let mut failures = Vec::new();
    for f in &output.files {
        reporter.status(format!("saving {}", f.name));
        match save::save_one(client, dir, f).await {
            Ok(s) => {
                reporter.info(format!(
                    "saved {} ({}, {})",
                    s.path.display(),
                    human_bytes(s.bytes),
                    s.format
                ));
                report.outputs.push(s);
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        return Err(Error::Failed(failures.join("\n")));
    }
    if report.outputs.is_empty() {
        let st = output
            .status
            .as_deref()
            .map(|s| format!(" (worker status: {s})"))
            .unwrap_or_default();
        let why = if output.warnings.is_empty() {
            String::new()
        } else {
            format!("; worker warnings: {}", output.warnings.join("; "))
        };
        if out.allow_empty {
            reporter.info(format!("job {id} returned no files{st}"));
            report.status = "completed".into();
            return Ok(0);
        }
        return Err(Error::Failed(format!(
            "job {id} completed but returned no files{st}{why}. The worker only returns `images` outputs (SaveImage, SaveAnimatedWEBP, core SaveVideo); preview-only, text, audio or VHS video outputs do not come back. Use --allow-empty if that is expected"
        )));
    }
    report.status = "completed".into();
    Ok(0)
}

/// `comfyctl status JOB_ID [--wait] [--save]`.
pub async fn status(args: &StatusArgs) -> Result<i32> {
    let started = Instant::now();
    let reporter = Reporter::new(args.out.quiet, args.out.verbose);
    let mut report = JobReport {
        mode: "status".into(),
        job_id: Some(args.job_id.clone()),
        ..Default::default()
    };
    let r = async {
        let client = Client::new(&args.runpod)?;
        report.target = client.base().to_string();
        report.endpoint = client.endpoint().map(str::to_string);
        let dir = if args.save || args.wait {
            Some(OutputDir::new(&args.out.output_dir, args.out.overwrite)?)
        } else {
            None
        };
        let flow = status_flow(args, &client, dir.as_ref(), &reporter, &mut report);
        tokio::select! {
            r = flow => r,
            _ = tokio::time::sleep(args.timeout), if args.wait => Err(Error::Timeout(format!(
                "job {} has not finished after {} (--timeout); it keeps running (cancel it with: comfyctl cancel {})",
                args.job_id, humantime::format_duration(args.timeout), args.job_id
            ))),
            s = shutdown_signal() => Err(Error::Interrupted(format!("{s}; job {} keeps running", args.job_id))),
        }
    }
    .await;
    reporter.finish();
    conclude(r, report, args.out.json, started)
}

async fn status_flow(
    args: &StatusArgs,
    client: &Client,
    dir: Option<&OutputDir>,
    reporter: &Reporter,
    report: &mut JobReport,
) -> Result<i32> {
    let id = args.job_id.as_str();
    let mut schedule = poll::Schedule::new(None);
    let mut known = false;
    loop {
        let body = fetch_status(client, id, known, reporter).await?;
        known = true;
        let delay = {
            let job = parse_job(client, &body)?;
            note_job(report, &job);
            let st = job.status().to_string();
            if response::is_final(&st) {
                show_times(reporter, &job);
                if let Some(dir) = dir {
                    let t = Instant::now();
                    let r = finish_job(client, id, &job, dir, &args.out, reporter, report).await;
                    report.timings.save_ms = Some(ms(t.elapsed()));
                    return r;
                }
                if st != "COMPLETED" {
                    // Reuse the failure wording; nothing is saved.
                    let tmp = tempfile::tempdir()
                        .map_err(|e| Error::io("creating a temporary directory", e))?;
                    let d = OutputDir::new(tmp.path(), false)?;
                    return finish_job(client, id, &job, &d, &args.out, reporter, report).await;
                }
                if let Some(raw) = job.output() {
                    if let Ok(o) = response::parse_output(raw) {
                        report.announced = o.files.iter().map(|f| f.name.clone()).collect();
                        report.warnings = o.warnings.clone();
                    }
                }
                reporter.info(format!(
                    "job {id}: COMPLETED with {} output file(s){}; save them with: comfyctl status {id} --save",
                    report.announced.len(),
                    if report.announced.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", report.announced.join(", "))
                    }
                ));
                report.status = "completed".into();
                return Ok(0);
            }
            if !args.wait {
                let state = describe_state(&st).to_string();
                if args.save {
                    return Err(Error::Failed(format!(
                        "job {id} is {st} ({state}); nothing to save yet: use --wait"
                    )));
                }
                reporter.info(format!("job {id}: {st} ({state})"));
                report.status = st.to_ascii_lowercase();
                return Ok(0);
            }
            reporter.status(format!("job {id}: {}", describe_state(&st)));
            schedule.next(&st)
        };
        tokio::time::sleep(delay).await;
    }
}

/// `comfyctl cancel JOB_ID`.
pub async fn cancel(args: &CancelArgs) -> Result<i32> {
    let started = Instant::now();
    let reporter = Reporter::new(false, 0);
    let mut report = JobReport {
        mode: "cancel".into(),
        job_id: Some(args.job_id.clone()),
        ..Default::default()
    };
    let r = async {
        let client = Client::new(&args.runpod)?;
        report.target = client.base().to_string();
        report.endpoint = client.endpoint().map(str::to_string);
        let id = args.job_id.as_str();
        let reply = client.cancel(id, &reporter).await?;
        match reply.status {
            200..=299 => {
                let job = parse_job(&client, &reply.body)?;
                note_job(&mut report, &job);
                let st = job.status().to_string();
                reporter.info(format!("job {id}: {}", if st.is_empty() { "cancel requested" } else { &st }));
                report.status = "cancelled".into();
                Ok(0)
            }
            404 => Err(Error::Failed(format!(
                "cannot cancel job {id}: {}/cancel answered 404 ({}): the job ID or endpoint is unknown, the job's result already expired, or this server has no /cancel (the runpod SDK's local test server has none)",
                client.base(),
                client.excerpt(&reply.body)
            ))),
            st => Err(Error::Server(format!(
                "{}/cancel/{id} answered HTTP {st}: {}",
                client.base(),
                client.excerpt(&reply.body)
            ))),
        }
    }
    .await;
    conclude(r, report, args.json, started)
}
