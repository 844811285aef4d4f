//! One result for every job command and every target: what `--json` prints (documented in
//! README.md, "JSON output"). The same keys are always present, `null` where a target does not
//! know a value (RunPod does not say which nodes came from ComfyUI's cache).

use crate::diagnostic::Diagnostic;
use crate::outputs::SavedFile;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Bumped when a key is removed or changes meaning (adding keys does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// Where the job ran, as shown (never credentials).
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct TargetInfo {
    /// `comfyui` or `runpod`.
    pub kind: &'static str,
    /// The server or endpoint base URL, redacted.
    pub url: String,
    /// The RunPod endpoint ID, when the job went through api.runpod.ai.
    pub endpoint: Option<String>,
}

/// Nodes that ran and nodes that ComfyUI took from its cache.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeCounts {
    pub executed: usize,
    pub cached: usize,
    pub executed_ids: Vec<String>,
    pub cached_ids: Vec<String>,
}

/// Wall-clock phases in seconds (millisecond precision); `null` for a phase that did not happen.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    /// Checking the workflow against a node schema.
    pub preflight_s: Option<f64>,
    /// Uploading input images (ComfyUI).
    pub upload_s: Option<f64>,
    /// The request that created the job (`POST /prompt`, `/run`).
    pub submit_s: Option<f64>,
    /// From queued to started (ComfyUI: measured; RunPod: the job's `delayTime`).
    pub queue_wait_s: Option<f64>,
    /// Running (ComfyUI: measured; RunPod: the job's `executionTime`).
    pub run_s: Option<f64>,
    /// Fetching and saving the outputs.
    pub download_s: Option<f64>,
    pub total_s: f64,
}

/// Seconds with millisecond precision.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The result of `send`, `status` or `cancel`.
#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    pub schema_version: u32,
    /// `send`, `status` or `cancel`.
    pub command: &'static str,
    /// `completed`, `queued`, `running`, `cancelled`, or `error` (then `error` says why).
    pub status: String,
    pub target: TargetInfo,
    /// `prompt` (ComfyUI `/prompt`), `run`, `runsync`, `status`, `cancel`.
    pub mode: String,
    /// The remote ID: ComfyUI's prompt_id, RunPod's job ID; `null` before one existed.
    pub job_id: Option<String>,
    pub client_id: Option<String>,
    /// The server's own word for the job's state (`success`, `COMPLETED`, `FAILED`, ...).
    pub remote_status: Option<String>,
    /// The RunPod worker that ran the job.
    pub worker_id: Option<String>,
    pub outputs: Vec<SavedFile>,
    /// The manifest written beside the outputs (`send`); `null` with `--no-manifest` or when none
    /// was written.
    pub manifest: Option<std::path::PathBuf>,
    /// Output files the job listed but that were not saved (`status` without `--save`).
    pub announced: Vec<String>,
    pub nodes: Option<NodeCounts>,
    pub all_cached: Option<bool>,
    /// `websocket` or `polling` (ComfyUI), `polling` (RunPod `/run`), `runsync`.
    pub followed_by: Option<String>,
    pub hints: Vec<String>,
    pub warnings: Vec<String>,
    /// Non-fatal findings with node detail (e.g. outputs ComfyUI refused while queueing the rest).
    pub diagnostics: Vec<Diagnostic>,
    pub timings: Timings,
    /// `null` on success; on failure `{kind, message, exit_code, diagnostics}`.
    pub error: Option<Value>,
    /// The job finished on the server and its outputs are being saved (not printed: it tells
    /// a cancelled run to say "save them later" rather than cancel a finished job).
    #[serde(skip)]
    pub saving: bool,
}

impl JobResult {
    pub fn new(command: &'static str, target: TargetInfo, mode: &str) -> Self {
        JobResult {
            schema_version: SCHEMA_VERSION,
            command,
            status: "error".into(),
            target,
            mode: mode.into(),
            job_id: None,
            client_id: None,
            remote_status: None,
            worker_id: None,
            outputs: Vec::new(),
            manifest: None,
            announced: Vec::new(),
            nodes: None,
            all_cached: None,
            followed_by: None,
            hints: Vec::new(),
            warnings: Vec::new(),
            diagnostics: Vec::new(),
            timings: Timings::default(),
            error: None,
            saving: false,
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("serializable")
    }

    /// Wraps a failure with this result, so `main` prints both (`--json` gets the whole object).
    pub fn fail(self, e: crate::error::Error) -> crate::error::Error {
        let e = match e {
            crate::error::Error::Job { source, .. } => *source,
            e => e,
        };
        crate::error::Error::Job {
            source: Box::new(e),
            result: Box::new(self.to_value()),
        }
    }

    /// Prints the result as pretty JSON on standard output.
    pub fn print_json(&self) {
        crate::report::print_stdout(&serde_json::to_string_pretty(self).expect("serializable"));
    }
}

/// What `--json` prints on standard output for this error: the job's result with its
/// `error` filled in for a job command, else `{"schema_version", "status": "error", "error"}`.
pub fn error_document(e: &crate::error::Error) -> Value {
    match e {
        crate::error::Error::Job { result, .. } => {
            let mut v = (**result).clone();
            if let Some(o) = v.as_object_mut() {
                o.insert("status".into(), "error".into());
                o.insert("error".into(), e.to_json());
            }
            v
        }
        _ => serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "status": "error",
            "error": e.to_json(),
        }),
    }
}
