//! comfyctl: a command-line client for ComfyUI and RunPod ComfyUI workers.
//!
//! Layers, top to bottom (no module imports one above it):
//! - [`commands`]: one file per subcommand; [`settings`] resolves the command line once.
//! - [`batch`]: many jobs from a file, journaled and scheduled, each run through the engine.
//! - [`engine`]: one way to run a job on any target ([`comfy`], [`runpod`]), with one
//!   [`result`] schema, a [`manifest`] beside every output; [`cancel`]lation fed by signals
//!   and the deadline.
//! - [`job`] (a prepared job), [`load`] (reading any workflow source, [`embedded`] in outputs
//!   too), [`outputs`] (the one saving path), [`schema`], [`convert`], [`verify`], [`diff`],
//!   [`inject`]ion, [`normalize`].
//! - [`net`] (the one network layer), [`workflow`] (the model), [`redacted`] (secrets and the
//!   one scrubber), [`error`]s, [`report`]ing.
//!
//! `main.rs` only parses arguments, prints errors and maps them to exit codes.

pub mod batch;
pub mod cancel;
pub mod cli;
pub mod comfy;
pub mod commands;
pub mod convert;
pub mod diagnostic;
pub mod diff;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod inject;
pub mod job;
pub mod load;
pub mod manifest;
pub mod media;
pub mod net;
pub mod normalize;
pub mod outputs;
pub mod redacted;
pub mod report;
pub mod result;
pub mod runpod;
pub mod schema;
pub mod settings;
pub mod suggest;
pub mod verify;
pub mod workflow;

use cli::{Cli, Command};
use error::Result;

/// Runs a parsed command line; returns the exit code of a run that did not fail.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Normalize(a) => commands::normalize::run(&a),
        Command::Verify(a) => commands::verify::run(&a),
        Command::Convert(a) => commands::convert::run(&a),
        Command::Schema(a) => commands::schema::run(&a),
        Command::Send(a) => commands::send::run(&a),
        Command::Batch(a) => commands::batch::run(&a),
        Command::Status(a) => commands::status::run(&a),
        Command::Cancel(a) => commands::cancel::run(&a),
        Command::Diff(a) => commands::diff::run(&a),
        Command::Replay(a) => commands::replay::run(&a),
    }
}

/// Whether the command line asked for `--json` output (errors are then also JSON on stdout).
pub fn wants_json(cli: &Cli) -> bool {
    match &cli.command {
        Command::Verify(a) => a.json,
        Command::Send(a) => a.out.json,
        Command::Batch(a) => a.out.json,
        Command::Status(a) => a.out.json,
        Command::Cancel(a) => a.json,
        Command::Diff(a) => a.json,
        Command::Replay(a) => a.out.json,
        _ => false,
    }
}
