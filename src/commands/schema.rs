//! `comfyctl schema pull | list`: save a server's node schema in the user cache, list the
//! cached ones. The cache file is named by the server's display-safe URL: no password in its
//! name, its `.url` companion or anything printed.

use crate::cli::{SchemaArgs, SchemaCommand};
use crate::error::{exit, Error, Result};
use crate::schema::{cache_dir, cache_path, compact_object_info, fetch_text, Schema};
use crate::settings::{process_env, ComfyServer, DEFAULT_COMFY_URL};
use serde_json::Value;

pub fn run(args: &SchemaArgs) -> Result<i32> {
    match &args.command {
        SchemaCommand::Pull { url, headers } => {
            let (flag, url) = match url {
                Some(u) => ("--url", u.clone()),
                None => match process_env("COMFY_URL") {
                    Some(u) => ("COMFY_URL", u),
                    None => ("--url", DEFAULT_COMFY_URL.to_string()),
                },
            };
            let server = ComfyServer::parse(flag, &url, headers)?;
            let url = server.shown();
            let url = &url;
            let rt = crate::cancel::runtime()?;
            let text = rt.block_on(fetch_text(&server))?;
            // Validate before saving so a proxy's HTML error page never lands in the cache.
            let schema = Schema::parse(&text, &format!("{url}/object_info"))?;
            let path = cache_path(url)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(dir.display().to_string(), e))?;
            }
            let compact = compact_object_info(&text, url)?;
            crate::outputs::write_atomic(&path, compact.as_bytes())?;
            let meta = serde_json::json!({"url": url, "classes": schema.classes.len()});
            crate::outputs::write_atomic(&path.with_extension("url"), meta.to_string().as_bytes())?;
            println!(
                "saved {} node classes from {url} to {}",
                schema.classes.len(),
                path.display()
            );
            Ok(exit::OK)
        }
        SchemaCommand::List => {
            let dir = cache_dir()?;
            println!("cache: {}", dir.display());
            let mut rows = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().and_then(|x| x.to_str()) != Some("json") {
                        continue;
                    }
                    let url = std::fs::read_to_string(p.with_extension("url"))
                        .ok()
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|v| v["url"].as_str().map(String::from))
                        .unwrap_or_else(|| "(unknown server)".into());
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    rows.push(format!(
                        "{url}\t{}\t{}",
                        crate::report::human_bytes(size),
                        p.display()
                    ));
                }
            }
            rows.sort();
            if rows.is_empty() {
                println!("no cached schemas; run 'comfyctl schema pull --url URL'");
            }
            for r in rows {
                println!("{r}");
            }
            Ok(exit::OK)
        }
    }
}
