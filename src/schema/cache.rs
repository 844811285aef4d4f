//! Where a schema comes from: a file, a server (`GET /object_info`), or the copy of a server's
//! schema that `comfyctl schema pull` saved in the user cache.
//!
//! - `--object-info FILE`: that file.
//! - `--server URL`: `GET URL/object_info`; if the server cannot be reached, the cached copy is
//!   used instead, with a warning.
//! - `--server URL --offline`: only the cached copy, never the network (CI, no VPN, ...).
//!
//! The cache is keyed by the server's display-safe URL (no credentials), so neither the file
//! name nor its `.url` companion ever holds a password.

use super::model::Schema;
use crate::error::{Error, Result};
use crate::net::{self, ClientOptions, NetError, NetKind};
use crate::report::Reporter;
use crate::settings::{ComfyServer, SchemaFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cache directory: `$COMFYCTL_CACHE_DIR/schemas`, else `<user cache dir>/comfyctl/schemas`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("COMFYCTL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("schemas"));
    }
    dirs::cache_dir()
        .map(|d| d.join("comfyctl").join("schemas"))
        .ok_or_else(|| {
            Error::Usage(
                "no user cache directory on this system; set COMFYCTL_CACHE_DIR to a writable directory"
                    .into(),
            )
        })
}

/// The cache key of a server: its URL without scheme or trailing slash, every character that is
/// not alphanumeric, `.` or `-` replaced by `_` (`http://127.0.0.1:8188/` → `127.0.0.1_8188`).
/// The scheme is dropped so that `http://host` and `https://host` share one entry.
pub fn cache_key(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    let u = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .unwrap_or(u);
    u.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Path of the cached schema for a server URL.
pub fn cache_path(url: &str) -> Result<PathBuf> {
    Ok(cache_dir()?.join(format!("{}.json", cache_key(url))))
}

pub fn read_file(path: &Path) -> Result<Schema> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(name.clone(), e))?;
    Schema::parse(&text, &name)
}

/// Loads a schema from `--object-info`, `--server` (falling back to the cache when the server is
/// unreachable) or, with `--offline`, the cache only. `Ok(None)` when no source was given.
pub fn load(src: &SchemaFrom, reporter: &Reporter) -> Result<Option<Schema>> {
    let (server, offline) = match src {
        SchemaFrom::None => return Ok(None),
        SchemaFrom::File(p) => return read_file(p).map(Some),
        SchemaFrom::Server { server, offline } => (server, *offline),
    };
    let url = server.shown();
    let cached = cache_path(&url)?;
    if offline {
        if !cached.exists() {
            return Err(Error::Usage(format!(
                "no cached schema for {url} (looked for {}); run 'comfyctl schema pull --url {url}' while the server is reachable",
                cached.display()
            )));
        }
        reporter.debug(1, format!("using cached schema {}", cached.display()));
        return read_file(&cached).map(Some);
    }
    let rt = crate::cancel::runtime()?;
    match rt.block_on(fetch_text(server)) {
        Ok(text) => Schema::parse(&text, &format!("{url}/object_info")).map(Some),
        Err(Error::Net(e))
            if cached.exists()
                && e.kind != NetKind::Status(401)
                && e.kind != NetKind::Status(403) =>
        {
            reporter.warn(format!(
                "{e}; using the cached schema {} instead",
                cached.display()
            ));
            read_file(&cached).map(Some)
        }
        Err(e) => Err(e),
    }
}

/// A cached schema for `server`, if `comfyctl schema pull` saved one (never the network).
pub fn cached(server: &ComfyServer) -> Option<Schema> {
    let p = cache_path(&server.shown()).ok()?;
    read_file(&p).ok()
}

/// Fetches and parses `GET URL/object_info`.
pub async fn fetch(server: &ComfyServer) -> Result<Schema> {
    let text = fetch_text(server).await?;
    Schema::parse(&text, &format!("{}/object_info", server.shown()))
}

/// `GET URL/object_info` as text, with the server's headers (kept sensitive). A server with many
/// custom node packs builds it slowly (seconds), hence the long timeout.
pub async fn fetch_text(server: &ComfyServer) -> Result<String> {
    let what = "GET /object_info";
    let shown = server.shown();
    let http = net::client(&ClientOptions {
        headers: server.headers.clone(),
        ..ClientOptions::default()
    })?;
    let resp = http
        .get(server.url("object_info"))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| NetError::from_reqwest(&e, what, &shown, &server.secrets))?;
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        return Err(Error::Auth(format!(
            "{what}: {shown} answered {status}; pass credentials with --header 'Authorization: ...' or as user:password@ in the URL"
        )));
    }
    if !resp.status().is_success() {
        return Err(NetError::new(NetKind::Status(status), what, &shown)
            .hint("is this a ComfyUI server?")
            .into());
    }
    let body =
        net::read_capped(resp, net::DEFAULT_JSON_LIMIT, what, &shown, &server.secrets).await?;
    String::from_utf8(body).map_err(|_| {
        NetError::new(NetKind::BadAnswer, what, &shown)
            .detail("not UTF-8 text")
            .into()
    })
}
