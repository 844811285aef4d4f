//! HTTP transport to a RunPod endpoint (or the runpod SDK's local test server): base URL, auth,
//! retries, and the one rule that matters for money: a request that creates a job (`/run`,
//! `/runsync`) is only retried when it certainly never reached the server (connection refused,
//! or 429, which RunPod answers before creating anything). Status polls, being read-only, are
//! retried on anything transient for up to a retry window.

use super::poll;
use crate::cli::RunpodTarget;
use crate::error::{Error, Result};
use crate::redacted::Secret;
use crate::report::Reporter;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// RunPod's API base; the endpoint ID is appended.
pub const DEFAULT_BASE: &str = "https://api.runpod.ai/v2";
/// How long status polls keep retrying through consecutive failures before giving up (exit 5).
/// `COMFYCTL_RUNPOD_RETRY_WINDOW` overrides it (a duration such as `30s`).
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// A finished HTTP exchange: status, `Retry-After`, whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What a request does; decides what may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Creates a job: retry only when it certainly did not reach the server.
    Submit,
    /// Read-only or idempotent (status, cancel, downloads): retry transient failures.
    Idempotent,
}

/// A RunPod endpoint client.
#[derive(Debug)]
pub struct Client {
    /// For quick exchanges; a read that stalls 60 s is a dead connection.
    http: reqwest::Client,
    /// For requests the server holds open while a job runs (`/runsync`, the SDK's POST /status).
    patient: reqwest::Client,
    base: String,
    endpoint: Option<String>,
    key: Option<Secret>,
    /// Set after a `GET /status` answered 405: the SDK's local server only takes POST.
    post_status: AtomicBool,
    retry_window: Duration,
}

fn build_http(read_timeout: Option<Duration>) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("comfyctl/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = read_timeout {
        b = b.read_timeout(t);
    }
    b.build()
        .map_err(|e| Error::Server(format!("cannot set up the HTTP client: {e}")))
}

/// Reads the API key: `--api-key-file` first, else `RUNPOD_API_KEY`. Never from a flag value.
fn read_key(target: &RunpodTarget) -> Result<Option<Secret>> {
    if let Some(p) = &target.api_key_file {
        let text = std::fs::read_to_string(p).map_err(|e| {
            Error::Usage(format!("--api-key-file {}: cannot read: {e}", p.display()))
        })?;
        let k = text.trim();
        if k.is_empty() {
            return Err(Error::Usage(format!(
                "--api-key-file {}: the file is empty",
                p.display()
            )));
        }
        return Ok(Some(Secret::new(k)));
    }
    Ok(std::env::var("RUNPOD_API_KEY")
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(Secret::new))
}

impl Client {
    /// Builds a client from `--endpoint`/`--runpod-url`/`--api-key-file` (and their env vars).
    pub fn new(target: &RunpodTarget) -> Result<Self> {
        let key = read_key(target)?;
        let base = match (&target.runpod_url, &target.endpoint) {
            (Some(u), _) => {
                let parsed = url::Url::parse(u).map_err(|e| {
                    Error::Usage(format!(
                        "--runpod-url '{u}': not a URL ({e}); e.g. http://127.0.0.1:8000"
                    ))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(Error::Usage(format!(
                        "--runpod-url '{u}': only http and https are supported"
                    )));
                }
                u.trim_end_matches('/').to_string()
            }
            (None, Some(id)) => {
                if id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(Error::Usage(format!(
                        "--endpoint '{id}': a RunPod endpoint ID has only letters, digits, '-' and '_' (find it on the endpoint's page in the RunPod console)"
                    )));
                }
                if key.is_none() {
                    return Err(Error::Usage(
                        "no RunPod API key: set RUNPOD_API_KEY or pass --api-key-file FILE (there is deliberately no flag that takes the key itself)".into(),
                    ));
                }
                format!("{DEFAULT_BASE}/{id}")
            }
            (None, None) => {
                return Err(Error::Usage(
                    "no RunPod endpoint: pass --endpoint ID (or set RUNPOD_ENDPOINT_ID), or --runpod-url URL".into(),
                ))
            }
        };
        let retry_window = std::env::var("COMFYCTL_RUNPOD_RETRY_WINDOW")
            .ok()
            .and_then(|s| crate::cli::parse_duration(&s).ok())
            .unwrap_or(DEFAULT_RETRY_WINDOW);
        Ok(Client {
            http: build_http(Some(Duration::from_secs(60)))?,
            patient: build_http(None)?,
            base,
            endpoint: target
                .endpoint
                .clone()
                .filter(|_| target.runpod_url.is_none()),
            key,
            post_status: AtomicBool::new(false),
            retry_window,
        })
    }

    /// The base URL (never contains the key).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The endpoint ID, when talking to api.runpod.ai.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Whether this server turned out to be the SDK's local test server (POST /status).
    pub fn is_local_sdk(&self) -> bool {
        self.post_status.load(Ordering::Relaxed)
    }

    /// A server body fit for an error message: UTF-8, at most 600 characters, key scrubbed,
    /// long base64 runs elided.
    pub fn excerpt(&self, body: &[u8]) -> String {
        let mut s: String = String::from_utf8_lossy(&body[..body.len().min(4000)]).into_owned();
        if let Some(k) = &self.key {
            s = k.scrub(&s);
        }
        let s = s.trim();
        if s.chars().count() > 600 {
            let cut: String = s.chars().take(600).collect();
            format!("{cut}… ({} bytes in all)", body.len())
        } else if s.is_empty() {
            "(empty body)".to_string()
        } else {
            s.to_string()
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path)
    }

    /// One attempt. `Err((error, reached))`: `reached` is false only when the request certainly
    /// never left (connection refused, DNS, TLS handshake).
    async fn once(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        patient: bool,
        reporter: &Reporter,
    ) -> std::result::Result<(Reply, Option<Duration>), (String, bool)> {
        let url = self.url(path);
        let http = if patient { &self.patient } else { &self.http };
        let mut req = http.request(method.clone(), &url);
        if let Some(k) = &self.key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose())).map_err(|_| {
                (
                    "the API key contains characters not allowed in an HTTP header".to_string(),
                    false,
                )
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        reporter.debug(2, format!("→ {method} {url}"));
        let t0 = Instant::now();
        let resp = req.send().await.map_err(|e| {
            let reached = !e.is_connect();
            (describe_reqwest(&e), reached)
        })?;
        let status = resp.status().as_u16();
        let retry_after = poll::retry_after(
            resp.headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let body = read_body(resp).await.map_err(|e| {
            (
                format!("the answer broke off: {}", describe_reqwest(&e)),
                true,
            )
        })?;
        reporter.debug(
            2,
            format!(
                "← {status} ({} bytes, {} ms)",
                body.len(),
                t0.elapsed().as_millis()
            ),
        );
        Ok((Reply { status, body }, retry_after))
    }

    /// Sends with the retry rules of `kind`. 401/403 become [`Error::Auth`]. Other statuses are
    /// returned for the caller to interpret.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        kind: Kind,
        patient: bool,
        reporter: &Reporter,
    ) -> Result<Reply> {
        let started = Instant::now();
        // A submit that cannot connect is usually a wrong URL or a dead network: a minute of
        // retries is plenty. Polls of a job that exists keep trying for the whole window.
        let window = match kind {
            Kind::Submit => self.retry_window.min(Duration::from_secs(60)),
            Kind::Idempotent => self.retry_window,
        };
        let mut attempt = 0u32;
        loop {
            let (wait, why) = match self
                .once(method.clone(), path, body, patient, reporter)
                .await
            {
                Ok((reply, retry_after)) => {
                    let st = reply.status;
                    if st == 401 || st == 403 {
                        return Err(Error::Auth(format!(
                            "RunPod API key rejected (HTTP {st} from {}); check RUNPOD_API_KEY or --api-key-file, and that the key may use this endpoint",
                            self.url(path)
                        )));
                    }
                    let transient = st == 429 || (kind == Kind::Idempotent && st >= 500);
                    if !transient {
                        return Ok(reply);
                    }
                    let why = format!("HTTP {st}: {}", self.excerpt(&reply.body));
                    let wait = match (st, retry_after) {
                        (429, Some(d)) => d,
                        _ => poll::backoff(attempt),
                    };
                    if started.elapsed() + wait > window {
                        return Err(Error::Server(format!(
                            "{method} {} kept failing for {:.0} s: {why}",
                            self.url(path),
                            started.elapsed().as_secs_f64()
                        )));
                    }
                    (wait, why)
                }
                Err((why, reached)) => {
                    if kind == Kind::Submit && reached {
                        return Err(Error::Server(format!(
                            "{method} {}: {why}. The request may have reached RunPod, so it is not sent again (that could start a second, paid job); check the endpoint's requests in the RunPod console",
                            self.url(path)
                        )));
                    }
                    let wait = poll::backoff(attempt);
                    if started.elapsed() + wait > window {
                        return Err(Error::Server(format!(
                            "cannot reach {} (tried for {:.0} s): {why}",
                            self.url(path),
                            started.elapsed().as_secs_f64()
                        )));
                    }
                    // Say so at once, not only with -v: a mistyped --runpod-url would otherwise
                    // look like a hang until the window runs out.
                    reporter.status(format!(
                        "cannot reach {}; retrying for up to {:.0} s (Ctrl-C to stop)",
                        self.url(path),
                        window.as_secs_f64()
                    ));
                    (wait, why)
                }
            };
            attempt += 1;
            reporter.debug(
                1,
                format!(
                    "{method} /{}: {why}; retrying in {:.1} s",
                    path.split('?').next().unwrap_or(path),
                    wait.as_secs_f64()
                ),
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `POST /run` or `POST /runsync?wait=…` with the request body.
    pub async fn submit(&self, path: &str, body: &[u8], reporter: &Reporter) -> Result<Reply> {
        self.request(
            Method::POST,
            path,
            Some(body),
            Kind::Submit,
            path.starts_with("runsync"),
            reporter,
        )
        .await
    }

    /// `GET /status/{id}`, or `POST` once the server said 405 (the SDK's local test server, where
    /// that POST runs the job and holds the connection until it is done).
    pub async fn status(&self, id: &str, reporter: &Reporter) -> Result<Reply> {
        let path = format!("status/{}", encode_id(id));
        if !self.post_status.load(Ordering::Relaxed) {
            let r = self
                .request(Method::GET, &path, None, Kind::Idempotent, false, reporter)
                .await?;
            if r.status != 405 {
                return Ok(r);
            }
            reporter.debug(
                1,
                "GET /status answered 405: this looks like the runpod SDK's local test server; using POST /status (which runs the job)",
            );
            self.post_status.store(true, Ordering::Relaxed);
        }
        self.request(Method::POST, &path, None, Kind::Idempotent, true, reporter)
            .await
    }

    /// `POST /cancel/{id}`.
    pub async fn cancel(&self, id: &str, reporter: &Reporter) -> Result<Reply> {
        let path = format!("cancel/{}", encode_id(id));
        self.request(Method::POST, &path, None, Kind::Idempotent, false, reporter)
            .await
    }

    /// Starts a download of a result URL (S3 presigned). The RunPod key is never sent there.
    pub async fn download(&self, url: &str) -> std::result::Result<reqwest::Response, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| describe_reqwest(&e))?;
        let st = resp.status();
        if st != StatusCode::OK {
            let hint = if st == StatusCode::FORBIDDEN {
                " (presigned result URLs expire after 7 days)"
            } else {
                ""
            };
            return Err(format!("HTTP {}{hint}", st.as_u16()));
        }
        Ok(resp)
    }
}

/// Job IDs are opaque; keep them to one path segment.
fn encode_id(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// Reads a whole body into one buffer sized from Content-Length, so a 130 MB status body costs
/// 130 MB and not the 2× of collecting chunks and then concatenating them.
async fn read_body(mut resp: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let cap = resp
        .content_length()
        .map(|n| n.min(1 << 31) as usize)
        .unwrap_or(8192);
    let mut buf = Vec::with_capacity(cap);
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// A reqwest error in words, with its cause chain (reqwest's own Display is terse).
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(c) = src {
        let t = c.to_string();
        if t != last && !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        last = t;
        src = c.source();
    }
    s
}
