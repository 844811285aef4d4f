//! HTTP transport to a RunPod endpoint (or the runpod SDK's local test server) over the one
//! network layer. The rule that matters for money is [`net::Retry`]'s: a request that creates a
//! job (`/run`, `/runsync`) is sent again only when it certainly never reached the server
//! (could not connect, or 429, which RunPod answers before creating anything); status polls,
//! being read-only, are retried on anything transient for the whole retry window.

use crate::engine::{Event, Events};
use crate::error::{Error, Result};
use crate::net::{self, Attempt, ClientOptions, Decision, Kind, NetError, NetKind, Retry};
use crate::settings::RunpodEndpoint;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A finished HTTP exchange: status and whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A RunPod endpoint client.
#[derive(Debug)]
pub struct Client {
    /// For quick exchanges; a read that stalls 60 s is a dead connection.
    http: reqwest::Client,
    /// For requests the server holds open while a job runs (`/runsync`, the SDK's POST /status).
    patient: reqwest::Client,
    /// For presigned result URLs: no credential of ours, any redirect.
    downloads: reqwest::Client,
    pub endpoint: RunpodEndpoint,
    /// Set after a `GET /status` answered 405: the SDK's local server only takes POST.
    post_status: AtomicBool,
    /// No request before this instant: one 429 backs off every job that shares this client (a
    /// batch honours RunPod's rate limit once, not once per job).
    not_before: std::sync::Mutex<Option<Instant>>,
}

impl Client {
    pub fn new(endpoint: RunpodEndpoint) -> Result<Self> {
        let opts = |read| ClientOptions {
            connect_timeout: Duration::from_secs(15),
            read_timeout: read,
            headers: endpoint.headers.clone(),
            ..ClientOptions::default()
        };
        Ok(Client {
            http: net::client(&opts(Some(Duration::from_secs(60))))?,
            patient: net::client(&opts(None))?,
            downloads: net::client(&ClientOptions {
                redirects: net::Redirects::Any,
                ..ClientOptions::default()
            })?,
            endpoint,
            post_status: AtomicBool::new(false),
            not_before: std::sync::Mutex::new(None),
        })
    }

    /// The base URL as shown (never contains the key or a password).
    pub fn shown(&self) -> &str {
        &self.endpoint.shown
    }

    /// The endpoint ID, when talking to api.runpod.ai.
    pub fn endpoint_id(&self) -> Option<&str> {
        self.endpoint.endpoint.as_deref()
    }

    /// Whether this server turned out to be the SDK's local test server (POST /status).
    pub fn is_local_sdk(&self) -> bool {
        self.post_status.load(Ordering::Relaxed)
    }

    /// A server body fit for a message: UTF-8, at most 600 characters, secrets scrubbed,
    /// control characters escaped.
    pub fn excerpt(&self, body: &[u8]) -> String {
        let s = String::from_utf8_lossy(&body[..body.len().min(4000)]);
        let s = self.scrub(s.trim());
        if s.chars().count() > 600 {
            let cut: String = s.chars().take(600).collect();
            format!("{cut}… ({} bytes in all)", body.len())
        } else if s.is_empty() {
            "(empty body)".to_string()
        } else {
            s
        }
    }

    /// Server text with every secret removed and control characters escaped.
    pub fn scrub(&self, text: &str) -> String {
        crate::redacted::escape_controls(&self.endpoint.secrets.scrub(text))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.endpoint.base, path)
    }

    fn shown_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.endpoint.shown,
            path.split('?').next().unwrap_or(path)
        )
    }

    /// One attempt.
    async fn once(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        patient: bool,
        ev: &dyn Events,
    ) -> std::result::Result<(Reply, Option<Duration>), NetError> {
        let what = format!("{method} /{}", path.split('?').next().unwrap_or(path));
        let http = if patient { &self.patient } else { &self.http };
        let mut req = http.request(method.clone(), self.url(path));
        if let Some(k) = &self.endpoint.key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose())).map_err(|_| {
                NetError::new(NetKind::Setup, "the API key", "")
                    .detail("it contains characters not allowed in an HTTP header")
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        ev.emit(Event::Note(
            2,
            format!("→ {method} {}", self.shown_url(path)),
        ));
        let t0 = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| NetError::from_reqwest(&e, &what, self.shown(), &self.endpoint.secrets))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Err(NetError::new(NetKind::Redirected, &what, self.shown()).detail(format!(
                "HTTP {status} to another host; comfyctl does not follow it (the API key would go along, and a submit would become a GET)"
            )));
        }
        let retry_after = net::retry_after_of(&resp);
        let body = net::read_capped(
            resp,
            net::DEFAULT_JSON_LIMIT,
            &what,
            self.shown(),
            &self.endpoint.secrets,
        )
        .await?;
        ev.emit(Event::Note(
            2,
            format!(
                "← {status} ({} bytes, {} ms)",
                body.len(),
                t0.elapsed().as_millis()
            ),
        ));
        Ok((Reply { status, body }, retry_after))
    }

    /// Sends with the retry rule of `kind`. 401/403 become [`Error::Auth`]. Other statuses are
    /// returned for the caller to interpret. `usable` says whether a 2xx body can be read (a
    /// proxy's HTML page during polling is a transient answer, not a result).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        kind: Kind,
        patient: bool,
        ev: &dyn Events,
    ) -> Result<Reply> {
        // A submit that cannot connect is usually a wrong URL or a dead network: a minute of
        // retries is plenty. Polls of a job that exists keep trying for the whole window.
        let window = match kind {
            Kind::Submit => self.endpoint.retry_window.min(Duration::from_secs(60)),
            Kind::Idempotent => self.endpoint.retry_window,
        };
        let mut retry = Retry::new(kind, window, Instant::now());
        loop {
            let gate = *self.not_before.lock().expect("not poisoned");
            if let Some(t) = gate.filter(|t| *t > Instant::now()) {
                tokio::time::sleep_until(t.into()).await;
            }
            let outcome = self.once(method.clone(), path, body, patient, ev).await;
            let (attempt, why) = match &outcome {
                Ok((reply, retry_after)) => {
                    let st = reply.status;
                    if st == 401 || st == 403 {
                        return Err(Error::Auth(format!(
                            "RunPod API key rejected (HTTP {st} from {}); check RUNPOD_API_KEY or --api-key-file, and that the key may use this endpoint",
                            self.shown_url(path)
                        )));
                    }
                    let bad_2xx = (200..300).contains(&st)
                        && kind == Kind::Idempotent
                        && !looks_like_json(&reply.body);
                    if bad_2xx {
                        (
                            Attempt::Failed(NetKind::BadAnswer),
                            format!("HTTP {st} but not JSON: {}", self.excerpt(&reply.body)),
                        )
                    } else {
                        (
                            Attempt::Answered {
                                status: st,
                                retry_after: *retry_after,
                            },
                            format!("HTTP {st}: {}", self.excerpt(&reply.body)),
                        )
                    }
                }
                Err(e) => (Attempt::Failed(e.kind), e.to_string()),
            };
            match retry.decide(attempt, Instant::now()) {
                Decision::Done => return Ok(outcome.expect("answered").0),
                Decision::GiveUp => {
                    return Err(match outcome {
                        Err(e) if kind == Kind::Submit && e.may_have_reached() => e
                            .hint("the request may have reached RunPod, so it is not sent again (that could start a second, paid job); check the endpoint's requests in the RunPod console")
                            .into(),
                        Err(e) if retry.attempts() > 0 => e
                            .hint(format!("tried for {:.0} s", retry.elapsed(Instant::now()).as_secs_f64()))
                            .into(),
                        Err(e) => e.into(),
                        Ok((reply, _)) => NetError::new(
                            NetKind::Status(reply.status),
                            format!("{method} /{}", path.split('?').next().unwrap_or(path)),
                            self.shown(),
                        )
                        .detail(format!(
                            "kept failing for {:.0} s: {why}",
                            retry.elapsed(Instant::now()).as_secs_f64()
                        ))
                        .into(),
                    })
                }
                Decision::Retry(wait) => {
                    if matches!(attempt, Attempt::Answered { status: 429, .. }) {
                        let until = Instant::now() + wait;
                        let mut g = self.not_before.lock().expect("not poisoned");
                        if g.is_none_or(|t| t < until) {
                            *g = Some(until);
                        }
                    }
                    if matches!(attempt, Attempt::Failed(NetKind::Unreachable)) {
                        // Say so at once, not only with -v: a mistyped --runpod-url would
                        // otherwise look like a hang until the window runs out.
                        ev.emit(Event::Submitting(format!(
                            "cannot reach {}; retrying for up to {:.0} s (Ctrl-C to stop)",
                            self.shown_url(path),
                            window.as_secs_f64()
                        )));
                    }
                    ev.emit(Event::Note(1, format!(
                            "{method} /{}: {why}; retrying in {:.1} s",
                            path.split('?').next().unwrap_or(path),
                            wait.as_secs_f64()
                        )));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// `POST /run` or `POST /runsync?wait=…` with the request body.
    pub async fn submit(&self, path: &str, body: &[u8], ev: &dyn Events) -> Result<Reply> {
        self.request(
            Method::POST,
            path,
            Some(body),
            Kind::Submit,
            path.starts_with("runsync"),
            ev,
        )
        .await
    }

    /// `GET /status/{id}`, or `POST` once the server said 405 (the SDK's local test server, where
    /// that POST runs the job and holds the connection until it is done).
    pub async fn status(&self, id: &str, ev: &dyn Events) -> Result<Reply> {
        let path = format!("status/{}", encode_id(id));
        if !self.post_status.load(Ordering::Relaxed) {
            let r = self
                .request(Method::GET, &path, None, Kind::Idempotent, false, ev)
                .await?;
            if r.status != 405 {
                return Ok(r);
            }
            ev.emit(Event::Note(
                1,
                "GET /status answered 405: this looks like the runpod SDK's local test server; using POST /status (which runs the job)".into(),
            ));
            self.post_status.store(true, Ordering::Relaxed);
        }
        self.request(Method::POST, &path, None, Kind::Idempotent, true, ev)
            .await
    }

    /// `POST /cancel/{id}`.
    pub async fn cancel(&self, id: &str, ev: &dyn Events) -> Result<Reply> {
        let path = format!("cancel/{}", encode_id(id));
        self.request(Method::POST, &path, None, Kind::Idempotent, false, ev)
            .await
    }

    /// Starts a download of a result URL (S3 presigned). The RunPod key is never sent there.
    pub async fn download(&self, url: &str) -> std::result::Result<reqwest::Response, NetError> {
        let shown = crate::redacted::display_url(url);
        let what = "GET (result URL)";
        let resp = self
            .downloads
            .get(url)
            .send()
            .await
            .map_err(|e| NetError::from_reqwest(&e, what, &shown, &self.endpoint.secrets))?;
        let st = resp.status().as_u16();
        if st != 200 {
            let mut e = NetError::new(NetKind::Status(st), what, &shown);
            if st == 403 {
                e = e.hint("presigned result URLs expire after 7 days");
            }
            return Err(e);
        }
        Ok(resp)
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Job IDs are opaque; keep them to one path segment.
fn encode_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, crate::net::PATH_SEGMENT).to_string()
}
