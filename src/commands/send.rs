//! `comfyctl send`: resolve settings, prepare the job (nothing touches the network until the
//! workflow and every input have been checked), prove the output directory writable, then run it
//! on the target through the engine and print one result.

use crate::cancel::Cancel;
use crate::cli::SendArgs;
use crate::comfy::ComfyTarget;
use crate::engine::{run_job, JobOptions, Target as _};
use crate::error::{exit, Result};
use crate::job::prepare;
use crate::outputs::OutputDir;
use crate::report::Reporter;
use crate::result::JobResult;
use crate::runpod::RunpodTarget;
use crate::settings::{process_env, SendSettings, Target};

pub fn run(args: &SendArgs) -> Result<i32> {
    let s = SendSettings::resolve(args, &process_env)?;
    execute(&s, None)
}

/// A look at what the target says about itself ([`crate::engine::Target::facts`]) before
/// anything is sent; an error stops the run (`replay --strict-drift`).
pub type BeforeSend<'a> = &'a dyn Fn(&serde_json::Value, &Reporter) -> Result<()>;

/// Runs resolved send settings: prepare, check the output directory, (`before`), run, report.
pub fn execute(s: &SendSettings, before: Option<BeforeSend>) -> Result<i32> {
    let reporter = Reporter::new(s.report.quiet, s.report.verbose);
    let prepared = prepare(s, &reporter)?;
    // Checked before submitting: a bad -o must not cost a paid job.
    let out = OutputDir::new(&s.output.dir, s.output.overwrite)?.with_hashing(s.manifest);
    let opts = JobOptions {
        preflight: s.preflight,
        allow_empty: s.output.allow_empty,
        client_id: s.client_id.clone(),
        manifest: s.manifest,
    };
    let rt = crate::cancel::runtime()?;
    let result = rt.block_on(async {
        let cancel = Cancel::install(s.deadline);
        match &s.target {
            Target::Comfy(server) => {
                let t = ComfyTarget::new(
                    server.clone(),
                    &s.client_id,
                    s.include_temp,
                    s.object_info.clone(),
                    s.report.verbose,
                    &s.output.dir,
                )?;
                if let Some(f) = before {
                    f(&t.facts(&prepared).await, &reporter)?;
                }
                run_job(&t, &prepared, &out, &opts, "prompt", &cancel, &reporter).await
            }
            Target::Runpod(ep) => {
                let t = RunpodTarget::new(
                    ep.clone(),
                    s.runpod.clone(),
                    &s.client_id,
                    s.object_info.clone(),
                    s.deadline,
                    &s.output.dir,
                )?;
                if let Some(f) = before {
                    f(&t.facts(&prepared).await, &reporter)?;
                }
                let mode = if s.runpod.sync { "runsync" } else { "run" };
                run_job(&t, &prepared, &out, &opts, mode, &cancel, &reporter).await
            }
        }
    });
    reporter.finish();
    let r = result?;
    summarize(&r, &reporter, &out);
    if s.report.json {
        r.print_json();
    }
    Ok(exit::OK)
}

/// The closing lines on standard error: what ran and what came from the cache, what was saved.
pub fn summarize(r: &JobResult, reporter: &Reporter, out: &OutputDir) {
    if let (Some(n), Some(false)) = (&r.nodes, r.all_cached) {
        reporter.info(format!(
            "cache: {} node{} ran, {} came from ComfyUI's cache",
            n.executed,
            if n.executed == 1 { "" } else { "s" },
            n.cached
        ));
    }
    reporter.info(format!(
        "done in {:.1}s: {} file{} in {}",
        r.timings.total_s,
        r.outputs.len(),
        if r.outputs.len() == 1 { "" } else { "s" },
        out.path().display()
    ));
}
