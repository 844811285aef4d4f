//! `comfyctl batch JOBS`: resolve the command line (several `--url`s, or a RunPod endpoint;
//! flags over the environment, as for `send`) into [`BatchSettings`] and run it.

use crate::batch::{self, BatchSettings, BatchTarget};
use crate::cli::BatchArgs;
use crate::error::{Error, Result};
use crate::settings::{
    process_env, refuse_other_target_flags, resolve_target, ComfyServer, Env, Preflight,
    RunpodOptions, Target, TargetFlags, DEFAULT_CLIENT_ID,
};

pub fn run(a: &BatchArgs) -> Result<i32> {
    batch::run(&resolve(a, &process_env)?)
}

/// [`BatchArgs`] → [`BatchSettings`], every flag checked.
pub fn resolve(a: &BatchArgs, env: Env) -> Result<BatchSettings> {
    let target = if !a.urls.is_empty() {
        if a.runpod.is_set() {
            return Err(Error::Usage(
                "--url names ComfyUI servers and --endpoint/--runpod-url a RunPod endpoint: give one kind of target".into(),
            ));
        }
        let servers = a
            .urls
            .iter()
            .map(|u| ComfyServer::parse("--url", u, &a.headers))
            .collect::<Result<Vec<_>>>()?;
        BatchTarget::Comfy(servers)
    } else {
        match resolve_target(
            &TargetFlags {
                url: None,
                headers: &a.headers,
                runpod: Some(&a.runpod),
            },
            env,
        )? {
            Target::Comfy(s) => BatchTarget::Comfy(vec![s]),
            Target::Runpod(r) => BatchTarget::Runpod(Box::new(r)),
        }
    };
    let (on_comfy, shown) = match &target {
        BatchTarget::Comfy(v) => (
            true,
            v.iter()
                .map(ComfyServer::shown)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        BatchTarget::Runpod(r) => (false, r.shown.clone()),
    };
    refuse_other_target_flags(
        on_comfy,
        &shown,
        "batch",
        &[
            ("--sync", a.sync),
            ("--ttl", a.ttl.is_some()),
            ("--execution-timeout", a.execution_timeout.is_some()),
            ("--api-key-file", a.runpod.api_key_file.is_some()),
        ],
        &[("--header", !a.headers.is_empty())],
    )?;
    if a.parallel == Some(0) {
        return Err(Error::Usage(
            "-j 0: at least one job must be in flight".into(),
        ));
    }
    let state = match &a.state {
        Some(p) => p.clone(),
        None if a.jobs.as_os_str() == "-" => return Err(Error::Usage(
            "jobs from standard input need --state FILE (the journal that makes a re-run resume)"
                .into(),
        )),
        None => {
            let stem = a
                .jobs
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "jobs".into());
            a.jobs.with_file_name(format!("{stem}.state.jsonl"))
        }
    };
    let defaults = crate::settings::inject_options(&a.inject)?;
    let client_id = a
        .client_id
        .clone()
        .or_else(|| env("COMFY_CLIENT_ID"))
        .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_string());
    Ok(BatchSettings {
        jobs: a.jobs.clone(),
        state,
        target,
        in_flight: a.parallel,
        out_dir: a.out.output_dir.clone(),
        overwrite: a.out.overwrite,
        allow_empty: a.out.allow_empty,
        json: a.out.json,
        quiet: a.out.quiet,
        verbose: a.out.verbose,
        retry_failed: a.retry_failed,
        resubmit_unknown: a.resubmit_unknown,
        dry_run: a.dry_run,
        client_id,
        workflow: a.workflow.clone(),
        defaults,
        names: a.names.clone(),
        object_info: a.object_info.clone(),
        preflight: if a.object_info.is_some() {
            Preflight::On
        } else {
            Preflight::Auto
        },
        runpod: RunpodOptions {
            sync: a.sync,
            poll_interval: None,
            execution_timeout: a.execution_timeout,
            ttl: a.ttl,
            webhook: None,
        },
        report: a.report.clone(),
    })
}
