//! The library's error type. `main` maps each variant to an exit code in one place
//! ([`Error::exit_code`]), so scripts can tell "fix your workflow" from "the server is down".
//! Retries and exit codes match on variants and [`NetKind`]s, never on message text.

use crate::diagnostic::Diagnostic;
use crate::net::{NetError, NetKind};
use crate::workflow::LoadError;
use std::fmt::Write as _;

/// Exit codes, documented in README.md.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// The run failed: the job or prompt failed on the server, `verify` found errors,
    /// `normalize --check` found an unnormalized file, no outputs came back.
    pub const FAILED: i32 = 1;
    /// Usage error or bad input: wrong flags, unreadable or invalid workflow, missing image,
    /// a workflow the server rejected at validation (HTTP 400 with node errors).
    pub const USAGE: i32 = 2;
    /// Authentication failed (RunPod API key rejected, HTTP 401/403).
    pub const AUTH: i32 = 3;
    /// `--timeout` ran out (the remote job was cancelled).
    pub const TIMEOUT: i32 = 4;
    /// Could not talk to the server: connection refused, DNS, TLS, unexpected responses, 5xx.
    pub const SERVER: i32 = 5;
    /// The job finished on the server but its outputs could not be saved (disk full,
    /// permissions); the message names the command that saves them later.
    pub const SAVE_FAILED: i32 = 6;
    /// Interrupted by Ctrl-C, SIGTERM or SIGHUP (the remote job was cancelled).
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),

    /// The workflow has structural errors (dangling links, cycles, malformed nodes, ...).
    #[error("{}", render_diags(.file, "the workflow is invalid", .diagnostics))]
    InvalidWorkflow {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },

    /// Bad command-line input: a flag value, an image path, `--set` syntax, an ambiguous node.
    #[error("{0}")]
    Usage(String),

    /// The server refused the workflow at validation time (ComfyUI 400, RunPod "validation failed").
    #[error("{}", render_diags(.target, .message, .diagnostics))]
    Rejected {
        target: String,
        message: String,
        diagnostics: Vec<Diagnostic>,
    },

    /// The credentials were refused.
    #[error("{0}")]
    Auth(String),

    /// The prompt or job failed while running (execution_error, FAILED, CANCELLED, no output).
    #[error("{0}")]
    Failed(String),

    /// The server does not know the job or prompt (wrong ID, expired, never arrived).
    #[error("{0}")]
    NotFound(String),

    /// `--timeout` ran out.
    #[error("{0}")]
    Timeout(String),

    /// Ctrl-C.
    #[error("interrupted{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    Interrupted(String),

    /// Could not reach the server, or it answered something we cannot use.
    #[error("{0}")]
    Server(String),

    /// A failed exchange with a server, by kind (unreachable, HTTP status, bad answer, ...).
    #[error(transparent)]
    Net(#[from] NetError),

    /// The job finished on the server, but its outputs could not be saved here (disk full,
    /// permissions). `refetch` is the command that saves them later.
    #[error("{message}\nthe job's outputs are still on the server; save them with: {refetch}")]
    SaveFailed { message: String, refetch: String },

    /// A job command failed: the error, and the job's result as far as it got (job ID, target,
    /// timings), which `--json` prints whole.
    #[error("{source}")]
    Job {
        source: Box<Error>,
        result: Box<serde_json::Value>,
    },

    /// Local file system trouble (writing outputs, reading inputs).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn render_diags(file: &str, headline: &str, diags: &[Diagnostic]) -> String {
    let mut s = format!("{file}: {headline}");
    for d in diags {
        let _ = write!(s, "\n  {}", d.to_string().replace('\n', "\n  "));
    }
    s
}

impl Error {
    /// The process exit code for this error. The only place exit codes are chosen.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Load(_) | Error::InvalidWorkflow { .. } | Error::Usage(_) => exit::USAGE,
            Error::Rejected { .. } => exit::USAGE,
            Error::Auth(_) => exit::AUTH,
            Error::Failed(_) | Error::NotFound(_) => exit::FAILED,
            Error::Timeout(_) => exit::TIMEOUT,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Server(_) => exit::SERVER,
            Error::Net(e) => match e.kind {
                NetKind::Status(401 | 403 | 407) => exit::AUTH,
                _ => exit::SERVER,
            },
            Error::SaveFailed { .. } => exit::SAVE_FAILED,
            Error::Io { .. } => exit::FAILED,
            Error::Job { source, .. } => source.exit_code(),
        }
    }

    /// The innermost error (through [`Error::Job`]).
    pub fn inner(&self) -> &Error {
        match self {
            Error::Job { source, .. } => source.inner(),
            e => e,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Stable machine-readable kind, used in `--json` error objects.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Load(_) => "load",
            Error::InvalidWorkflow { .. } => "invalid_workflow",
            Error::Usage(_) => "usage",
            Error::Rejected { .. } => "rejected",
            Error::Auth(_) => "auth",
            Error::Failed(_) => "failed",
            Error::NotFound(_) => "not_found",
            Error::Timeout(_) => "timeout",
            Error::Interrupted(_) => "interrupted",
            Error::Server(_) | Error::Net(_) => "server",
            Error::SaveFailed { .. } => "save_failed",
            Error::Io { .. } => "io",
            Error::Job { source, .. } => source.kind(),
        }
    }

    /// The `error` object of `--json` output: kind, message, exit code, diagnostics.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind(),
            "message": self.to_string(),
            "exit_code": self.exit_code(),
            "diagnostics": self.diagnostics(),
        })
    }

    /// Diagnostics carried by the error, if any (for `--json`).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::InvalidWorkflow { diagnostics, .. } | Error::Rejected { diagnostics, .. } => {
                diagnostics
            }
            Error::Job { source, .. } => source.diagnostics(),
            _ => &[],
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
