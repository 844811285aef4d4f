//! `comfyctl replay MANIFEST`: send the workflow a manifest recorded again, through the same
//! engine as `send` (so the replay writes its own manifest). Every recorded input image is read
//! again and checked against its SHA-256 before anything is sent; the recorded seed is kept
//! unless `--seed` / `--random-seed` says otherwise; the recorded target is used unless `--url`,
//! `--endpoint` or `--runpod-url` names another. When the server's version or the schema of the
//! classes used differs from the manifest's, the differences are printed before sending
//! (`--strict-drift` refuses instead).

use crate::cli::{ReplayArgs, RunpodTarget, SendArgs};
use crate::error::{Error, Result};
use crate::inject::ImageArg;
use crate::manifest;
use crate::report::Reporter;
use crate::settings::{process_env, SendSettings};
use serde_json::Value;
use std::path::PathBuf;

pub fn run(a: &ReplayArgs) -> Result<i32> {
    let m = manifest::read(&a.manifest)?;
    let file = a.manifest.display().to_string();
    let images = check_images(&m, &file)?;
    let kind = m.pointer("/target/kind").and_then(Value::as_str);
    let str_at = |p: &str| m.pointer(p).and_then(Value::as_str).map(str::to_string);
    let explicit = a.url.is_some() || a.runpod.is_set();
    let (url, runpod) = if explicit {
        (a.url.clone(), a.runpod.clone())
    } else {
        match kind {
            Some("comfyui") => (str_at("/target/url"), a.runpod.clone()),
            Some("runpod") => {
                let endpoint = str_at("/target/endpoint");
                let runpod_url = endpoint.is_none().then(|| str_at("/target/url")).flatten();
                (
                    None,
                    RunpodTarget {
                        endpoint,
                        runpod_url,
                        api_key_file: a.runpod.api_key_file.clone(),
                    },
                )
            }
            _ => {
                return Err(Error::Usage(format!(
                    "{file}: the manifest records no target; give --url URL or --endpoint ID"
                )))
            }
        }
    };
    let to_runpod = url.is_none() && runpod.is_set();
    let seed = match (a.seed, a.random_seed) {
        (Some(s), _) => Some(s),
        (None, true) => None,
        (None, false) => m.pointer("/injected/seed").and_then(Value::as_u64),
    };
    let args = SendArgs {
        workflow: a.manifest.clone(),
        inject: crate::cli::InjectArgs {
            images: Vec::new(),
            prompt: None,
            negative: None,
            seed,
            random_seed: a.random_seed,
            sets: a.sets.clone(),
        },
        // The recorded workflow is already normalized: sent as it is, byte for byte.
        no_normalize: true,
        names: None,
        url,
        client_id: a.client_id.clone().or_else(|| str_at("/client_id")),
        headers: a.headers.clone(),
        include_temp: false,
        preflight: false,
        no_preflight: a.no_preflight,
        object_info: None,
        runpod,
        sync: to_runpod && str_at("/mode").as_deref() == Some("runsync"),
        poll_interval: None,
        execution_timeout: None,
        ttl: None,
        webhook: None,
        out: a.out.clone(),
        no_manifest: a.no_manifest,
        timeout: a.timeout,
    };
    let mut s = SendSettings::resolve(&args, &process_env)?;
    s.inject.images = images;
    let old_server = m.get("server").cloned().unwrap_or(Value::Null);
    let strict = a.strict_drift;
    let check = move |facts: &Value, rep: &Reporter| -> Result<()> {
        let changes = manifest::drift(&old_server, facts);
        if changes.is_empty() {
            rep.debug(1, "the server matches the manifest (version, node schema)");
            return Ok(());
        }
        if strict {
            return Err(Error::Usage(format!(
                "{file}: the server changed since the manifest was written; nothing was sent (--strict-drift):\n  {}",
                changes.join("\n  ")
            )));
        }
        rep.warn(format!(
            "the server changed since the manifest was written ({} difference{}); sending anyway:",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ));
        for c in &changes {
            rep.warn(format!("  {c}"));
        }
        Ok(())
    };
    super::send::execute(&s, Some(&check))
}

/// Reads every recorded input image again; a file gone or changed is an error naming it.
fn check_images(m: &Value, file: &str) -> Result<Vec<ImageArg>> {
    let mut out = Vec::new();
    let none = Vec::new();
    let recorded = m
        .pointer("/injected/images")
        .and_then(Value::as_array)
        .unwrap_or(&none);
    for img in recorded {
        let (Some(path), Some(node), Some(want)) = (
            img.get("path").and_then(Value::as_str),
            img.get("node").and_then(Value::as_str),
            img.get("sha256").and_then(Value::as_str),
        ) else {
            return Err(Error::Usage(format!(
                "{file}: an entry of injected.images lacks path, node or sha256"
            )));
        };
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Usage(format!(
                "{file}: input image {} (node {node}) cannot be read ({e}); nothing was sent — restore the file, or send the workflow anew with 'comfyctl send --image'",
                path.display()
            ))
        })?;
        let got = manifest::sha256_hex(&bytes);
        if got != want {
            return Err(Error::Usage(format!(
                "{file}: input image {} (node {node}) changed since the manifest was written (sha256 {want} then, {got} now); nothing was sent — restore the file, or send the workflow anew with 'comfyctl send --image'",
                path.display()
            )));
        }
        out.push(ImageArg {
            node: Some(node.to_string()),
            path,
        });
    }
    Ok(out)
}
