//! The HTTP side of a ComfyUI server over the one network layer: JSON requests with capped
//! bodies, and failures as typed errors a person can act on.
//!
//! Core ComfyUI has no authentication, but people put it behind nginx/Caddy/Cloudflare with basic
//! or bearer auth and under a path (`https://host/comfy/`). Credentials come in the URL or as
//! `--header`; [`ComfyServer`] keeps them in sensitive header values and out of every URL shown,
//! and every string that comes back is scrubbed of them.

use crate::error::{Error, Result};
use crate::net::{self, ClientOptions, NetError, NetKind};
use crate::settings::ComfyServer;
use serde_json::Value;
use std::time::Duration;

/// A ComfyUI server and one HTTP client for it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    pub server: ComfyServer,
}

impl Client {
    pub fn new(server: ComfyServer) -> Result<Self> {
        let http = net::client(&ClientOptions {
            headers: server.headers.clone(),
            ..ClientOptions::default()
        })?;
        Ok(Client { http, server })
    }

    /// The server as shown to the user: the base URL without credentials.
    pub fn target(&self) -> String {
        self.server.shown()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> url::Url {
        self.server.url(path)
    }

    /// Removes any credential from text that came back from the server.
    pub fn scrub(&self, text: &str) -> String {
        self.server.secrets.scrub(text)
    }

    /// A transport failure (nothing usable came back).
    pub fn transport(&self, what: &str, e: reqwest::Error) -> Error {
        let mut n = NetError::from_reqwest(
            &e,
            what,
            &format!("ComfyUI at {}", self.target()),
            &self.server.secrets,
        );
        if n.kind == NetKind::Unreachable {
            n = n.hint("is ComfyUI running there? (set --url or COMFY_URL)");
        }
        n.into()
    }

    /// An unexpected HTTP status as an error; 401/403/407 become [`Error::Auth`].
    pub async fn status_error(&self, what: &str, resp: reqwest::Response) -> Error {
        let status = resp.status().as_u16();
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("html"));
        let body = net::read_capped(resp, 64 * 1024, what, &self.target(), &self.server.secrets)
            .await
            .unwrap_or_default();
        let body = self.scrub(String::from_utf8_lossy(&body).trim());
        let short: String = crate::redacted::escape_controls(&body)
            .chars()
            .take(300)
            .collect();
        match status {
            401 | 407 => Error::Auth(format!(
                "{what}: {} refused the credentials (HTTP {status}); pass them with --header 'Authorization: …' or as user:password@ in --url",
                self.target()
            )),
            403 => Error::Auth(format!(
                "{what}: {} answered 403 Forbidden{}; check the credentials for the proxy in front of ComfyUI",
                self.target(),
                if short.is_empty() { String::new() } else { format!(": {short}") }
            )),
            _ if html => NetError::new(NetKind::Status(status), what, self.target())
                .detail("an HTML page")
                .hint("this does not look like ComfyUI's API; check --url (scheme, port and base path)")
                .into(),
            _ => NetError::new(NetKind::Status(status), what, self.target())
                .detail(short)
                .into(),
        }
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str, timeout: Duration) -> Result<Value> {
        let what = format!("GET /{}", path.split('?').next().unwrap_or(path));
        let resp = self
            .http
            .get(self.url(path))
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport(&what, e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp).await);
        }
        self.read_json(resp, net::DEFAULT_JSON_LIMIT, &what).await
    }

    /// Reads a successful answer (at most `limit` bytes) as JSON; anything else is a
    /// [`NetKind::BadAnswer`] that asks whether this is ComfyUI at all.
    pub async fn read_json(
        &self,
        resp: reqwest::Response,
        limit: u64,
        what: &str,
    ) -> Result<Value> {
        let body =
            net::read_capped(resp, limit, what, &self.target(), &self.server.secrets).await?;
        serde_json::from_slice(&body).map_err(|e| {
            NetError::new(NetKind::BadAnswer, what, self.target())
                .detail(format!("not JSON ({e})"))
                .hint("is this a ComfyUI server?")
                .into()
        })
    }

    /// POST a JSON body, expecting 200 (ComfyUI answers these with an empty body).
    pub async fn post_json_ok(&self, path: &str, body: &Value, timeout: Duration) -> Result<()> {
        let what = format!("POST /{path}");
        let resp = self
            .http
            .post(self.url(path))
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport(&what, e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(&what, resp).await);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_never_shows_credentials() {
        let s = ComfyServer::parse("--url", "https://me:p%40ss@example.com/comfy", &[]).unwrap();
        let c = Client::new(s).unwrap();
        assert_eq!(c.target(), "https://example.com/comfy");
        assert_eq!(c.scrub("echo p@ss back"), "echo (redacted) back");
        assert!(!format!("{c:?}").contains("p@ss"));
    }
}
