//! `comfyctl status JOB_ID [--wait] [--save]`: look at a job that `send` submitted — a RunPod job
//! (`--endpoint` / `--runpod-url`) or a ComfyUI prompt (`--url`) — wait for it, save its outputs.
//! Attaching goes through the same engine as `send`, so the outputs are saved the same way.

use crate::cancel::Cancel;
use crate::cli::StatusArgs;
use crate::comfy::ComfyTarget;
use crate::engine::{save_outputs, Event, Events, Target};
use crate::error::{exit, Error, Result};
use crate::outputs::OutputDir;
use crate::report::Reporter;
use crate::result::{secs, JobResult};
use crate::runpod::RunpodTarget;
use crate::settings::{process_env, RunpodOptions, StatusSettings, Target as TargetSettings};
use std::time::Instant;

pub fn run(args: &StatusArgs) -> Result<i32> {
    let s = StatusSettings::resolve(args, &process_env)?;
    let reporter = Reporter::new(s.report.quiet, s.report.verbose);
    let out = if s.save || s.wait {
        Some(OutputDir::new(&s.output.dir, s.output.overwrite)?)
    } else {
        None
    };
    let rt = crate::cancel::runtime()?;
    let r = rt.block_on(async {
        let cancel = Cancel::install(s.deadline);
        match &s.target {
            TargetSettings::Runpod(ep) => {
                let t = RunpodTarget::new(
                    ep.clone(),
                    RunpodOptions::default(),
                    crate::settings::DEFAULT_CLIENT_ID,
                    None,
                    None,
                    &s.output.dir,
                )?;
                status(&t, &s, out.as_ref(), &cancel, &reporter).await
            }
            TargetSettings::Comfy(server) => {
                let t = ComfyTarget::new(
                    server.clone(),
                    crate::settings::DEFAULT_CLIENT_ID,
                    false,
                    None,
                    s.report.verbose,
                    &s.output.dir,
                )?;
                status(&t, &s, out.as_ref(), &cancel, &reporter).await
            }
        }
    });
    reporter.finish();
    let r = r?;
    if s.report.json {
        r.print_json();
    }
    Ok(exit::OK)
}

async fn status<T: Target>(
    t: &T,
    s: &StatusSettings,
    out: Option<&OutputDir>,
    cancel: &Cancel,
    ev: &Reporter,
) -> Result<JobResult> {
    let t0 = Instant::now();
    let mut r = JobResult::new("status", t.info(), "status");
    let id = s.job_id.as_str();
    let res = {
        let flow = async {
            let mut remote = t.attach(id, ev, &mut r).await?;
            if let Some(pending) = t.peek(&mut remote, ev, &mut r).await? {
                let state = &pending.detail;
                if !s.wait {
                    if s.save {
                        return Err(Error::Failed(format!(
                            "job {id} is {state}; nothing to save yet: use --wait"
                        )));
                    }
                    ev.emit(Event::Note(0, format!("job {id}: {state}")));
                    r.status = if pending.running { "running" } else { "queued" }.into();
                    return Ok(());
                }
            }
            let fin = t.follow(remote, None, ev, &mut r).await?;
            match out {
                Some(out) => save_outputs(t, &fin, out, s.output.allow_empty, ev, &mut r).await,
                None => {
                    r.announced = t.outputs(&fin)?.into_iter().map(|o| o.name).collect();
                    ev.emit(Event::Note(
                        0,
                        format!(
                            "job {id}: finished with {} output file(s){}; save them with: {}",
                            r.announced.len(),
                            if r.announced.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", r.announced.join(", "))
                            },
                            t.refetch_command(id)
                        ),
                    ));
                    Ok(())
                }
            }
        };
        tokio::select! {
            res = flow => res,
            reason = cancel.cancelled() => Err(reason.into_error(&format!(
                "job {id} keeps running{}",
                t.cancel_command(id)
                    .map(|c| format!(" (cancel it with: {c})"))
                    .unwrap_or_default()
            ))),
        }
    };
    r.timings.total_s = secs(t0.elapsed());
    match res {
        Ok(()) => {
            if r.status == "error" {
                r.status = "completed".into();
            }
            Ok(r)
        }
        Err(e) => Err(r.fail(e)),
    }
}
