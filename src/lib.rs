//! comfyctl: a command-line client for ComfyUI and RunPod ComfyUI workers.
//!
//! One module per concern: the [`workflow`] model, [`normalize`], [`verify`], [`inject`]ion,
//! the [`comfy`] and [`runpod`] clients, [`outputs`] saving, [`report`]ing, [`schema`] and
//! [`convert`], and [`error`]s. `main.rs` only parses arguments and maps errors to exit codes.

pub mod cli;
pub mod comfy;
pub mod commands;
pub mod convert;
pub mod diagnostic;
pub mod diff;
pub mod embedded;
pub mod error;
pub mod inject;
pub mod media;
pub mod normalize;
pub mod outputs;
pub mod redacted;
pub mod report;
pub mod runpod;
pub mod schema;
pub mod send;
pub mod verify;
pub mod workflow;

use cli::{Cli, Command};
use error::{Error, Result};

/// Runs a parsed command line; returns the exit code of a run that did not fail.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Normalize(a) => commands::normalize_cmd(&a),
        Command::Verify(a) => commands::verify_cmd(&a),
        Command::Convert(a) => commands::convert_cmd(&a),
        Command::Schema(a) => schema::cmd(&a),
        Command::Send(a) => runtime()?.block_on(send::run(*a)),
        Command::Status(a) => runtime()?.block_on(runpod::status(&a)),
        Command::Cancel(a) => runtime()?.block_on(runpod::cancel(&a)),
        Command::Diff(a) => diff::cmd(&a),
    }
}

/// A small multi-threaded runtime for the network commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
}

/// Whether the command line asked for `--json` output (errors are then also JSON on stdout).
pub fn wants_json(cli: &Cli) -> bool {
    match &cli.command {
        Command::Verify(a) => a.json,
        Command::Send(a) => a.out.json,
        Command::Status(a) => a.out.json,
        Command::Cancel(a) => a.json,
        Command::Diff(a) => a.json,
        _ => false,
    }
}
