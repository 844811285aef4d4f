//! Command-line definitions (clap derive). Parsing only; the work happens in the modules.
//!
//! Environment variables (COMFY_URL, RUNPOD_ENDPOINT_ID, ...) are read in [`crate::settings`],
//! after the flags, so that a flag always beats the environment; clap never reads them, and so
//! never prints their values in `--help`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "comfyctl",
    version,
    about = "Normalize, verify and send ComfyUI API-format workflows to ComfyUI or RunPod, and save the outputs",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rename node IDs to stable, structural, readable names and rewrite every link.
    Normalize(NormalizeArgs),
    /// Check workflows for problems before spending GPU time on them.
    Verify(VerifyArgs),
    /// Send a workflow to a ComfyUI server (default) or a RunPod endpoint, and save its outputs.
    Send(Box<SendArgs>),
    /// Run many jobs from a JSON Lines or CSV file, resumably, on RunPod or several ComfyUI servers.
    Batch(Box<BatchArgs>),
    /// Show (and optionally save the outputs of) a RunPod job.
    Status(StatusArgs),
    /// Cancel a RunPod job.
    Cancel(CancelArgs),
    /// Manage saved copies of a server's node schema (/object_info).
    Schema(SchemaArgs),
    /// Convert a UI-format workflow to API format using a server's node schema.
    Convert(ConvertArgs),
    /// Compare two workflows after normalization: nodes added/removed, values changed, links
    /// rewired. Exit 0 identical, 1 different, 2 bad input.
    Diff(DiffArgs),
    /// Send the workflow a manifest recorded again (same inputs, checked by SHA-256; same seed
    /// unless told otherwise), to the recorded target unless another is given.
    Replay(Box<ReplayArgs>),
}

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    /// Workflow file (API format, RunPod request or /prompt body); `-` for standard input.
    #[arg(default_value = "-")]
    pub workflow: PathBuf,
    /// Write here (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write nothing; exit 1 with a one-line reason if the file is not already normalized.
    #[arg(long, conflicts_with = "output")]
    pub check: bool,
    /// Print `old → new` for every node to standard error.
    #[arg(long)]
    pub show_map: bool,
    /// JSON object class_type → name that overrides or extends the built-in name table.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    #[command(flatten)]
    pub schema: SchemaSource,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Workflow files; `-` for standard input.
    #[arg(required = true)]
    pub workflows: Vec<PathBuf>,
    /// Print diagnostics as one JSON document on standard output.
    #[arg(long)]
    pub json: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Name table overrides, as for `normalize --names`.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    #[command(flatten)]
    pub schema: SchemaSource,
}

/// Where a node schema (ComfyUI's /object_info) comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct SchemaSource {
    /// Fetch the node schema from this ComfyUI server (GET /object_info); when it cannot be
    /// reached, use the copy saved by 'comfyctl schema pull' (with a warning).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Use a saved /object_info JSON file.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub object_info: Option<PathBuf>,
    /// With --server: use only the copy saved by 'comfyctl schema pull', never the network.
    #[arg(long, requires = "server")]
    pub offline: bool,
    /// With --server: extra HTTP header for a ComfyUI behind a proxy, `Name: value`
    /// (repeatable). Values are never printed.
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "server")]
    pub headers: Vec<String>,
}

/// What to change in a workflow before sending it: `send`'s injections, and `batch`'s defaults
/// for lines that do not give their own.
#[derive(Debug, Args, Clone, Default)]
pub struct InjectArgs {
    /// Input image for a LoadImage node: `PATH`, or `NODE=PATH` when there are several
    /// (NODE = normalized ID, original ID, or the node's title). Repeatable.
    #[arg(long = "image", value_name = "[NODE=]PATH")]
    pub images: Vec<String>,
    /// Text of the positive prompt node (the one that reaches a sampler's `positive` input).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Text of the negative prompt node.
    #[arg(long)]
    pub negative: Option<String>,
    /// Set every `seed` / `noise_seed` input to N.
    #[arg(long, value_name = "N", conflicts_with = "random_seed")]
    pub seed: Option<u64>,
    /// Set every `seed` / `noise_seed` input to a fresh random value.
    #[arg(long)]
    pub random_seed: bool,
    /// Set any literal input: `NODE.INPUT=VALUE` (VALUE parsed as JSON when it parses, else a string).
    #[arg(long = "set", value_name = "NODE.INPUT=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Workflow file (API format, RunPod request or /prompt body); `-` for standard input.
    pub workflow: PathBuf,

    #[command(flatten)]
    pub inject: InjectArgs,
    /// Send the workflow with its IDs as they are.
    #[arg(long)]
    pub no_normalize: bool,
    /// Name table overrides, as for `normalize --names`.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,

    // ---- direct ComfyUI ----
    /// ComfyUI server URL (http or https, optional base path; a bare host:port means http)
    /// [env: COMFY_URL; default http://127.0.0.1:8188].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Client ID sent with every request (a stable identity for the server)
    /// [env: COMFY_CLIENT_ID; default runpod-worker-stable-client].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Extra HTTP header for ComfyUI behind a proxy, `Name: value` (repeatable). Values are never printed.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Also save `type: temp` previews.
    #[arg(long)]
    pub include_temp: bool,
    /// Check the workflow against the server's node schema before queueing
    /// (default: on for ComfyUI when it answers /object_info).
    #[arg(long, overrides_with = "no_preflight")]
    pub preflight: bool,
    /// Skip the schema check.
    #[arg(long)]
    pub no_preflight: bool,
    /// Use this saved /object_info for the preflight check instead of asking the server.
    #[arg(long, value_name = "FILE")]
    pub object_info: Option<PathBuf>,

    // ---- RunPod ----
    #[command(flatten)]
    pub runpod: RunpodTarget,
    /// Use /runsync instead of /run + polling.
    #[arg(long)]
    pub sync: bool,
    /// Fixed poll interval for /status (default: adaptive).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,
    /// RunPod execution timeout for the job (policy.executionTimeout).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub execution_timeout: Option<Duration>,
    /// RunPod job time-to-live (policy.ttl).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// URL RunPod calls when the job finishes.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    // ---- common ----
    #[command(flatten)]
    pub out: OutputArgs,
    /// Do not write the manifest `comfyctl-<job id>.json` beside the outputs.
    #[arg(long)]
    pub no_manifest: bool,
    /// Give up (and cancel the remote job) after this long, e.g. 90s, 10m, 1h; 0 or `none`
    /// for no limit.
    #[arg(long, value_parser = parse_timeout, default_value = "30m", value_name = "DURATION")]
    pub timeout: Timeout,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A manifest written by `send` (`comfyctl-<job id>.json`).
    pub manifest: PathBuf,
    /// Set every `seed` / `noise_seed` input to N instead of the recorded seed.
    #[arg(long, value_name = "N", conflicts_with = "random_seed")]
    pub seed: Option<u64>,
    /// Set every `seed` / `noise_seed` input to a fresh random value.
    #[arg(long)]
    pub random_seed: bool,
    /// Change a literal input: `NODE.INPUT=VALUE`, as for send. Repeatable.
    #[arg(long = "set", value_name = "NODE.INPUT=VALUE")]
    pub sets: Vec<String>,
    /// Send to this ComfyUI server instead of the recorded target.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Client ID [default: the recorded one].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Extra HTTP header for ComfyUI behind a proxy, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    #[command(flatten)]
    pub runpod: RunpodTarget,
    /// Refuse to send when the server's version or node schema differs from the manifest's.
    #[arg(long)]
    pub strict_drift: bool,
    /// Skip the schema check before queueing.
    #[arg(long)]
    pub no_preflight: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Do not write a manifest for the replay.
    #[arg(long)]
    pub no_manifest: bool,
    /// Give up (and cancel the remote job) after this long; 0 or `none` for no limit.
    #[arg(long, value_parser = parse_timeout, default_value = "30m", value_name = "DURATION")]
    pub timeout: Timeout,
}

/// How to reach a RunPod endpoint.
#[derive(Debug, Args, Clone, Default)]
pub struct RunpodTarget {
    /// RunPod endpoint ID (selects the RunPod path) [env: RUNPOD_ENDPOINT_ID].
    #[arg(long, value_name = "ID")]
    pub endpoint: Option<String>,
    /// Replace the whole RunPod base URL (https://api.runpod.ai/v2/ID), e.g. the SDK's local test
    /// server at http://127.0.0.1:8000. Selects the RunPod path [env: RUNPOD_URL].
    #[arg(long, value_name = "URL")]
    pub runpod_url: Option<String>,
    /// Read the RunPod API key from this file (default: the RUNPOD_API_KEY environment variable).
    /// There is deliberately no flag that takes the key itself.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

impl RunpodTarget {
    pub fn is_set(&self) -> bool {
        self.endpoint.is_some() || self.runpod_url.is_some()
    }
}

/// Output saving and reporting, shared by every command that saves files.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Directory for the outputs (created if missing).
    #[arg(
        short = 'o',
        long = "output-dir",
        default_value = ".",
        value_name = "DIR"
    )]
    pub output_dir: PathBuf,
    /// Replace existing files instead of adding -1, -2, ...
    #[arg(long)]
    pub overwrite: bool,
    /// Succeed even if no output files came back.
    #[arg(long)]
    pub allow_empty: bool,
    /// Print one JSON object with the result on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress and no messages, only errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// More detail (-v, -vv).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The job file: JSON Lines (one object per line) or CSV with a header row; `-` for standard
    /// input. Fields: id, workflow, image, images, prompt, negative, seed, random_seed, set, out.
    pub jobs: PathBuf,
    /// A ComfyUI server (repeatable: jobs are spread over all of them) [env: COMFY_URL].
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Extra HTTP header for every ComfyUI server, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    #[command(flatten)]
    pub runpod: RunpodTarget,
    /// Jobs in flight: on RunPod in all (default 4), on ComfyUI per server (default 2: one
    /// running, one queued).
    #[arg(short = 'j', long = "parallel", value_name = "N")]
    pub parallel: Option<usize>,
    /// The journal (default: JOBS.state.jsonl beside the job file). Re-running with the same
    /// journal skips finished jobs and re-attaches to submitted ones.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Run jobs the journal records as failed again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Submit again jobs whose RunPod submit may have happened but whose job ID was never
    /// recorded (otherwise they are held, so as not to pay twice).
    #[arg(long)]
    pub resubmit_unknown: bool,
    /// Check every line and print the plan (job, target, model group), then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a self-contained HTML gallery of the batch (outputs, prompts, errors) here.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Workflow for lines without a `workflow` field.
    #[arg(long, value_name = "FILE")]
    pub workflow: Option<PathBuf>,
    /// Injections for every line that does not set them itself (a line's own `set` wins).
    #[command(flatten)]
    pub inject: InjectArgs,
    /// Client ID [env: COMFY_CLIENT_ID; default runpod-worker-stable-client].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Name table overrides, as for `normalize --names`.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Check every job against this saved /object_info before sending.
    #[arg(long, value_name = "FILE")]
    pub object_info: Option<PathBuf>,
    /// RunPod: use /runsync instead of /run + polling.
    #[arg(long)]
    pub sync: bool,
    /// RunPod execution timeout per job (policy.executionTimeout).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub execution_timeout: Option<Duration>,
    /// RunPod job time-to-live (policy.ttl).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job ID that `send` printed (a RunPod job ID, or a ComfyUI prompt ID with --url).
    pub job_id: String,
    /// The ComfyUI server the prompt was queued on [env: COMFY_URL].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Extra HTTP header for ComfyUI behind a proxy, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    #[command(flatten)]
    pub runpod: RunpodTarget,
    /// Wait until the job finishes, then save its outputs.
    #[arg(long)]
    pub wait: bool,
    /// Save the outputs of a finished job.
    #[arg(long)]
    pub save: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// With --wait: give up after this long; 0 or `none` for no limit.
    #[arg(long, value_parser = parse_timeout, default_value = "30m", value_name = "DURATION")]
    pub timeout: Timeout,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The RunPod job ID.
    pub job_id: String,
    #[command(flatten)]
    pub runpod: RunpodTarget,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Fetch /object_info from a server and save it in the user cache (used by verify offline).
    Pull {
        /// ComfyUI server URL [env: COMFY_URL; default http://127.0.0.1:8188].
        #[arg(long)]
        url: Option<String>,
        /// Extra HTTP header `Name: value` (repeatable).
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Show where cached schemas live and which servers they are for.
    List,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// UI-format workflow; `-` for standard input.
    pub workflow: PathBuf,
    /// Write here (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seed for `{a|b}` dynamic prompt choices (default: always the first option).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub schema: SchemaSource,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old workflow: API format, RunPod request, /prompt body, UI format (with a schema), or
    /// a ComfyUI output (PNG, WEBP, MP4) with its workflow embedded; `-` for standard input.
    pub old: PathBuf,
    /// The new workflow, as OLD.
    pub new: PathBuf,
    /// Print the differences as one JSON object on standard output (see README).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub schema: SchemaSource,
}

/// The longest duration any flag takes (a year): far past every real job, and far from the
/// overflow of `Instant + Duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `90s`, `10m`, `1h30m`, `500ms`; a bare number means seconds. At most a year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("'{s}' is not a duration; try 90s, 10m or 1h"));
        }
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("'{s}' is not a duration ({e}); try 90s, 10m or 1h"))?
    };
    if d > MAX_DURATION {
        return Err(format!("'{s}' is longer than a year; try 90s, 10m or 1h"));
    }
    Ok(d)
}

/// A `--timeout`: a duration, or no limit (`0` / `none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Option<Duration>);

/// Parses a `--timeout`: a duration, or `0` / `none` for no limit.
pub fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(Timeout(None));
    }
    let d = parse_duration(s)?;
    Ok(Timeout((!d.is_zero()).then_some(d)))
}
