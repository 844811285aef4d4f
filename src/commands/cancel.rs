//! `comfyctl cancel JOB_ID`: cancel a RunPod job.

use crate::cli::CancelArgs;
use crate::engine::{Event, Events, Target};
use crate::error::{exit, Error, Result};
use crate::net::{NetError, NetKind};
use crate::report::Reporter;
use crate::result::{secs, JobResult};
use crate::runpod::RunpodTarget;
use crate::settings::{process_env, CancelSettings, RunpodOptions};
use std::time::Instant;

pub fn run(args: &CancelArgs) -> Result<i32> {
    let s = CancelSettings::resolve(args, &process_env)?;
    let reporter = Reporter::new(false, 0);
    let t = RunpodTarget::new(
        s.target.clone(),
        RunpodOptions::default(),
        crate::settings::DEFAULT_CLIENT_ID,
        None,
        None,
        std::path::Path::new("."),
    )?;
    let t0 = Instant::now();
    let mut r = JobResult::new("cancel", t.info(), "cancel");
    r.job_id = Some(s.job_id.clone());
    let rt = crate::cancel::runtime()?;
    let res = rt.block_on(async {
        let id = s.job_id.as_str();
        let c = t.client();
        let reply = c.cancel(id, &reporter).await?;
        match reply.status {
            200..=299 => {
                let job = t.parse_job(&reply.body)?;
                r.remote_status = job.status.clone();
                let st = job.status().to_string();
                reporter.emit(Event::Note(
                    0,
                    format!(
                        "job {id}: {}",
                        if st.is_empty() {
                            "cancel requested".to_string()
                        } else {
                            crate::redacted::escape_controls(&st)
                        }
                    ),
                ));
                r.status = "cancelled".into();
                Ok(())
            }
            404 => Err(Error::Failed(format!(
                "cannot cancel job {id}: {}/cancel answered 404 ({}): the job ID or endpoint is unknown, the job's result already expired, or this server has no /cancel (the runpod SDK's local test server has none)",
                c.shown(),
                c.excerpt(&reply.body)
            ))),
            st => Err(NetError::new(NetKind::Status(st), format!("POST /cancel/{id}"), c.shown())
                .detail(c.excerpt(&reply.body))
                .into()),
        }
    });
    r.timings.total_s = secs(t0.elapsed());
    match res {
        Ok(()) => {
            if s.json {
                r.print_json();
            }
            Ok(exit::OK)
        }
        Err(e) => Err(r.fail(e)),
    }
}
