//! The HTTP side of a ComfyUI server: where it is (base path included), how to authenticate to
//! the proxy in front of it, and turning transport failures into errors a person can act on.
//!
//! Core ComfyUI has no authentication, but people put it behind nginx/Caddy/Cloudflare with basic
//! or bearer auth and under a path (`https://host/comfy/`). Credentials may come in the URL
//! (`https://user:pass@host/`) or as `--header 'Authorization: Bearer …'`; either way they are
//! kept in sensitive header values and stripped from every URL that could be printed.

use crate::error::{Error, Result};
use crate::redacted::Secret;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// A ComfyUI server: base URL (no credentials, trailing slash), extra headers, one HTTP client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    secrets: Vec<Secret>,
}

impl Client {
    /// Parses `--url` and `--header` values. Nothing is sent yet.
    pub fn new(url: &str, header_args: &[String]) -> Result<Self> {
        let mut base = Url::parse(url.trim()).map_err(|e| {
            Error::Usage(format!(
                "--url '{}': not a URL ({e}); expected e.g. http://127.0.0.1:8188",
                redact_url_text(url)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Usage(format!(
                "--url: scheme '{}' is not supported; use http:// or https:// (the websocket follows as ws:// or wss://)",
                base.scheme()
            )));
        }
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        if !base.username().is_empty() || base.password().is_some() {
            let user = percent_decode(base.username());
            let pass = percent_decode(base.password().unwrap_or(""));
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| Error::Usage("--url: the credentials cannot be sent".into()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
            if !pass.is_empty() {
                secrets.push(Secret::new(pass));
            }
            secrets.push(Secret::new(token));
            let _ = base.set_username("");
            let _ = base.set_password(None);
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        for h in header_args {
            let (name, value) = h.split_once(':').ok_or_else(|| {
                Error::Usage(format!(
                    "--header '{}': expected 'Name: value', e.g. --header 'Authorization: Bearer TOKEN'",
                    h.split(':').next().unwrap_or("").trim()
                ))
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                Error::Usage(format!("--header: '{}' is not a header name", name.trim()))
            })?;
            if name == reqwest::header::ORIGIN {
                return Err(Error::Usage(
                    "--header Origin: ComfyUI answers 403 to a loopback request whose Origin differs from Host; comfyctl sends no Origin on purpose".into(),
                ));
            }
            let value = value.trim();
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                Error::Usage(format!(
                    "--header {name}: the value contains characters that cannot be sent in a header"
                ))
            })?;
            v.set_sensitive(true);
            // The credential part of `Bearer xyz` / `Basic xyz`, or the whole value.
            let secret = value.rsplit(' ').next().unwrap_or(value);
            if secret.len() >= 4 {
                secrets.push(Secret::new(secret));
            }
            headers.insert(name, v);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A stalled transfer (a /view that stops sending) fails instead of hanging until
            // --timeout; a slow one keeps going as long as bytes arrive.
            .read_timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("comfyctl/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers.clone())
            .build()
            .map_err(|e| Error::Server(format!("cannot start the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            headers,
            secrets,
        })
    }

    /// The server as shown to the user: the base URL without credentials.
    pub fn target(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// Headers to send on the websocket handshake too (auth for a proxy).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// `path` (no leading slash) under the base path.
    pub fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    /// `ws(s)://…/ws?clientId=ID` under the base path.
    pub fn ws_url(&self, client_id: &str) -> Url {
        let mut u = self.url("ws");
        let scheme = if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        let _ = u.set_scheme(scheme);
        u.query_pairs_mut().append_pair("clientId", client_id);
        u
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Removes any credential from text that came back from the server or from a transport error.
    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        for sec in &self.secrets {
            s = sec.scrub(&s);
        }
        s
    }

    /// A transport error (nothing usable came back) as a [`Error::Server`].
    pub fn transport(&self, what: &str, e: reqwest::Error) -> Error {
        let mut msg = format!("{what}: cannot reach ComfyUI at {}", self.target());
        let mut src: Option<&dyn std::error::Error> = Some(&e);
        let mut detail = String::new();
        while let Some(err) = src {
            detail = err.to_string();
            src = err.source();
        }
        if e.is_timeout() {
            msg.push_str(": timed out");
        } else if !detail.is_empty() {
            msg.push_str(&format!(": {detail}"));
        }
        if e.is_connect() {
            msg.push_str("; is ComfyUI running there? (set --url or COMFY_URL)");
        }
        Error::Server(self.scrub(&msg))
    }

    /// An unexpected HTTP status as an error; 401/403 become [`Error::Auth`].
    pub async fn status_error(&self, what: &str, resp: reqwest::Response) -> Error {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body = self.scrub(body.trim());
        let short: String = body.chars().take(300).collect();
        let shown = if short.is_empty() {
            String::new()
        } else {
            format!(": {short}")
        };
        match status.as_u16() {
            401 | 407 => Error::Auth(format!(
                "{what}: {} refused the credentials (HTTP {status}); pass them with --header 'Authorization: …' or as user:password@ in --url",
                self.target()
            )),
            403 => Error::Auth(format!(
                "{what}: {} answered 403 Forbidden{shown}; check the credentials for the proxy in front of ComfyUI",
                self.target()
            )),
            _ => Error::Server(format!(
                "{what}: {} answered HTTP {status}{shown}",
                self.target()
            )),
        }
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str, timeout: Duration) -> Result<Value> {
        let what = format!("GET /{path}");
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
        let text = resp.text().await.map_err(|e| self.transport(&what, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Server(format!(
                "{what}: {} answered something that is not JSON ({e}); is this a ComfyUI server?",
                self.target()
            ))
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

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A URL as text with anything between `//` and `@` removed, for messages about unparsable URLs.
fn redact_url_text(s: &str) -> String {
    match (s.find("//"), s.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}(redacted)@{}", &s[..a + 2], &s[b + 1..]),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_and_credentials() {
        let c = Client::new("https://me:p%40ss@example.com/comfy", &[]).unwrap();
        assert_eq!(c.target(), "https://example.com/comfy");
        assert_eq!(c.url("prompt").as_str(), "https://example.com/comfy/prompt");
        assert_eq!(
            c.ws_url("abc").as_str(),
            "wss://example.com/comfy/ws?clientId=abc"
        );
        let auth = c.headers().get(AUTHORIZATION).unwrap();
        assert!(auth.is_sensitive());
        let expect = base64::engine::general_purpose::STANDARD.encode("me:p@ss");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {expect}"));
        assert_eq!(c.scrub("echo p@ss back"), "echo (redacted) back");
        assert!(!format!("{c:?}").contains("p@ss"));
    }

    #[test]
    fn headers_parse_and_reject() {
        let c = Client::new(
            "http://127.0.0.1:8188",
            &["Authorization: Bearer tok123".into()],
        )
        .unwrap();
        assert_eq!(c.ws_url("x").as_str(), "ws://127.0.0.1:8188/ws?clientId=x");
        assert_eq!(c.scrub("bad tok123"), "bad (redacted)");
        assert!(Client::new("http://h", &["NoColon".into()]).is_err());
        assert!(Client::new("http://h", &["Origin: http://x".into()]).is_err());
        assert!(Client::new("ftp://h", &[]).is_err());
        let e = Client::new("http://u:secret@[bad", &[]).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
