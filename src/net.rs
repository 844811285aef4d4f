//! The one network layer: how every HTTP client is built, what a failed exchange *is*, how much
//! of an answer is read, and when a request may be sent again.
//!
//! - [`client`] is the only place a `reqwest::Client` is built (timeouts, user agent, proxies from
//!   the environment, rustls, redirects), so a fix to any of those applies everywhere.
//! - [`NetError`] carries a [`NetKind`]; retries and exit codes match on the kind, never on text.
//! - [`read_capped`] bounds every answer that is read into memory (decompressed bytes count).
//! - [`Retry`] is the retry rule as a pure state machine with the clock as a parameter: a request
//!   that creates a job ([`Kind::Submit`]) is sent again only when it certainly never reached the
//!   server (could not connect, or 429, which is answered before anything is created); read-only
//!   requests ([`Kind::Idempotent`]) are retried on anything transient within a window.

use crate::redacted::{display_url, Secrets};
use rand::Rng;
use reqwest::header::HeaderMap;
use std::fmt;
use std::time::{Duration, Instant};

/// The user agent every request carries.
pub const USER_AGENT: &str = concat!("comfyctl/", env!("CARGO_PKG_VERSION"));
/// The largest JSON answer read into memory (`/history`, `/queue`, `/object_info`, a RunPod
/// error), decompressed bytes counted: a gzip bomb or an endless body stops here.
pub const DEFAULT_JSON_LIMIT: u64 = 64 << 20;
/// RunPod's `/status` carries base64 outputs inline (RunPod itself caps results at about 20 MB),
/// so its answers may be larger.
pub const RUNPOD_STATUS_LIMIT: u64 = 256 << 20;

/// Characters percent-encoded in one path segment (a job or prompt ID): everything but RFC
/// 3986's unreserved characters.
pub const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How a client follows redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow none (API requests): a credential header never travels to another host, and a
    /// submit is never sent twice (reqwest repeats a POST on 307/308) nor turned into a GET.
    None,
    /// Follow any redirect (presigned result URLs carry no credential of ours).
    Any,
}

/// What a client is for.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// A stalled transfer fails after this long without a byte; a slow one keeps going.
    pub read_timeout: Option<Duration>,
    /// Headers sent with every request (sensitive values stay sensitive).
    pub headers: HeaderMap,
    pub redirects: Redirects,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(120)),
            headers: HeaderMap::new(),
            redirects: Redirects::None,
        }
    }
}

/// Builds an HTTP client. The only `reqwest::Client::builder` in comfyctl.
pub fn client(o: &ClientOptions) -> Result<reqwest::Client, NetError> {
    let policy = match o.redirects {
        Redirects::Any => reqwest::redirect::Policy::limited(5),
        Redirects::None => reqwest::redirect::Policy::none(),
    };
    let mut b = reqwest::Client::builder()
        .connect_timeout(o.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(USER_AGENT)
        .default_headers(o.headers.clone())
        .redirect(policy);
    if let Some(t) = o.read_timeout {
        b = b.read_timeout(t);
    }
    b.build().map_err(|e| NetError {
        kind: NetKind::Setup,
        what: "starting the HTTP client".into(),
        server: String::new(),
        detail: chain(&e),
        hint: None,
    })
}

/// What went wrong with an exchange; decides retries and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    /// The request never reached the server (connection refused, DNS, TLS handshake).
    Unreachable,
    /// No answer in time (it may have reached the server).
    Timeout,
    /// The connection broke after the request was sent (it may have reached the server).
    BrokeOff,
    /// The server answered with this HTTP status.
    Status(u16),
    /// The server answered, but not with something usable (not JSON, wrong shape, HTML page).
    BadAnswer,
    /// The answer is larger than comfyctl reads into memory.
    TooLarge,
    /// A redirect to another host was refused.
    Redirected,
    /// The HTTP client itself could not be set up.
    Setup,
}

/// A failed exchange with a server, ready to show: every string in it is already scrubbed.
#[derive(Debug, Clone, thiserror::Error)]
pub struct NetError {
    pub kind: NetKind,
    /// `GET /history/ID`, `POST /run`, ...
    pub what: String,
    /// The server as shown (no credentials).
    pub server: String,
    pub detail: String,
    /// What to check, when there is a useful thing to say.
    pub hint: Option<String>,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.detail)
        };
        match self.kind {
            NetKind::Unreachable => {
                write!(f, "{}: cannot reach {}{detail}", self.what, self.server)?
            }
            NetKind::Timeout => write!(
                f,
                "{}: {} did not answer in time{detail}",
                self.what, self.server
            )?,
            NetKind::BrokeOff => write!(
                f,
                "{}: the connection to {} broke off{detail}",
                self.what, self.server
            )?,
            NetKind::Status(code) => write!(
                f,
                "{}: {} answered HTTP {code}{detail}",
                self.what, self.server
            )?,
            NetKind::BadAnswer => write!(
                f,
                "{}: {} answered something unusable{detail}",
                self.what, self.server
            )?,
            NetKind::TooLarge => write!(
                f,
                "{}: the answer from {} is too large{detail}",
                self.what, self.server
            )?,
            NetKind::Redirected => write!(
                f,
                "{}: {} redirected elsewhere{detail}",
                self.what, self.server
            )?,
            NetKind::Setup => write!(f, "{}{detail}", self.what)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl NetError {
    pub fn new(kind: NetKind, what: impl Into<String>, server: impl Into<String>) -> Self {
        NetError {
            kind,
            what: what.into(),
            server: server.into(),
            detail: String::new(),
            hint: None,
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    /// Whether the request may have reached the server (false only when it certainly did not).
    pub fn may_have_reached(&self) -> bool {
        !matches!(self.kind, NetKind::Unreachable | NetKind::Setup)
    }

    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            NetKind::Status(c) => Some(c),
            _ => None,
        }
    }

    /// Worth trying again later (for read-only requests): the server or the way to it may recover.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            NetKind::Unreachable | NetKind::Timeout | NetKind::BrokeOff | NetKind::BadAnswer => {
                true
            }
            NetKind::Status(c) => c == 408 || c == 429 || c >= 500,
            NetKind::TooLarge | NetKind::Redirected | NetKind::Setup => false,
        }
    }

    /// Turns a reqwest failure into a [`NetError`], scrubbing every secret out of its text.
    pub fn from_reqwest(e: &reqwest::Error, what: &str, server: &str, secrets: &Secrets) -> Self {
        let kind = if e.is_connect() {
            NetKind::Unreachable
        } else if e.is_timeout() {
            NetKind::Timeout
        } else if e.is_redirect() {
            NetKind::Redirected
        } else if e.is_builder() {
            NetKind::Setup
        } else {
            NetKind::BrokeOff
        };
        NetError {
            kind,
            what: what.to_string(),
            server: server.to_string(),
            detail: secrets.scrub(&display_url_in(&chain(e))),
            hint: None,
        }
    }
}

/// An error and its causes in words (reqwest's own Display is terse), without repeats.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Replaces every URL-looking word in `text` by its [`display_url`] form (reqwest puts the
/// request URL, credentials included, into its error text).
pub fn display_url_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map(|p| p + 1)
            .unwrap_or(0);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"' || c == '\'' || c == '>')
            .map(|p| p + i)
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        out.push_str(&display_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Reads a whole answer, at most `limit` bytes after decompression. The buffer is sized from
/// Content-Length (capped), so a 130 MB body costs 130 MB, not twice that.
pub async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
    what: &str,
    server: &str,
    secrets: &Secrets,
) -> Result<Vec<u8>, NetError> {
    if let Some(n) = resp.content_length() {
        if n > limit {
            return Err(
                NetError::new(NetKind::TooLarge, what, server).detail(format!(
                    "it announces {n} bytes; comfyctl reads at most {limit}"
                )),
            );
        }
    }
    let cap = resp.content_length().unwrap_or(8192).min(limit) as usize;
    let mut buf = Vec::with_capacity(cap);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| NetError::from_reqwest(&e, what, server, secrets))?
    {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(NetError::new(NetKind::TooLarge, what, server)
                .detail(format!("it is over {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// What a request does; decides what may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Creates a job: retried only when it certainly did not reach the server.
    Submit,
    /// Read-only or idempotent (status, history, cancel, downloads): transient failures retried.
    Idempotent,
}

/// The outcome of one attempt, as the retry rule sees it.
#[derive(Debug, Clone, Copy)]
pub enum Attempt {
    /// An HTTP answer; `retry_after` from its header.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The exchange failed.
    Failed(NetKind),
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep this answer (success, or a status the caller interprets).
    Done,
    /// Try again after this long.
    Retry(Duration),
    /// Stop: not retryable, or the window ran out.
    GiveUp,
}

/// The retry rule for one request: the window, the attempt count and the start time.
#[derive(Debug, Clone)]
pub struct Retry {
    kind: Kind,
    window: Duration,
    started: Instant,
    attempt: u32,
}

impl Retry {
    pub fn new(kind: Kind, window: Duration, now: Instant) -> Self {
        Retry {
            kind,
            window,
            started: now,
            attempt: 0,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Decides after an attempt, at time `now`.
    pub fn decide(&mut self, a: Attempt, now: Instant) -> Decision {
        let transient = match (a, self.kind) {
            (Attempt::Answered { status: 429, .. }, _) => true,
            (Attempt::Answered { status, .. }, Kind::Idempotent) => status >= 500 || status == 408,
            (Attempt::Answered { .. }, Kind::Submit) => false,
            (Attempt::Failed(NetKind::Unreachable), _) => true,
            (Attempt::Failed(k), Kind::Idempotent) => {
                matches!(k, NetKind::Timeout | NetKind::BrokeOff | NetKind::BadAnswer)
            }
            (Attempt::Failed(_), Kind::Submit) => false,
        };
        if !transient {
            return match a {
                Attempt::Answered { .. } => Decision::Done,
                Attempt::Failed(_) => Decision::GiveUp,
            };
        }
        let wait = match a {
            Attempt::Answered {
                status: 429,
                retry_after: Some(d),
            } => d,
            _ => backoff(self.attempt),
        };
        if self.elapsed(now) + wait > self.window {
            return Decision::GiveUp;
        }
        self.attempt += 1;
        Decision::Retry(wait)
    }
}

/// Exponential backoff with full jitter: attempt 0 waits up to 250 ms, then 500 ms, 1 s, ...
/// capped at 10 s. Jitter spreads the retries of many cron jobs hitting one server.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = 250u64.saturating_mul(1u64 << attempt.min(6)).min(10_000);
    let ms = rand::thread_rng().gen_range(cap_ms / 2..=cap_ms);
    Duration::from_millis(ms)
}

/// Longest wait a `Retry-After` may ask for; past it, comfyctl asks again anyway.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(120);

/// Parses a `Retry-After` header: seconds (the form RunPod and most proxies use) or an HTTP date
/// (RFC 9110 allows both), capped at 2 minutes. A date in the past means "now".
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    retry_after_at(value, std::time::SystemTime::now())
}

fn retry_after_at(value: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(
            Duration::try_from_secs_f64(secs).map_or(RETRY_AFTER_MAX, |d| d.min(RETRY_AFTER_MAX)),
        );
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_MAX),
    )
}

/// The `Retry-After` of an answer.
pub fn retry_after_of(resp: &reqwest::Response) -> Option<Duration> {
    retry_after(
        resp.headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for a in 0..40 {
            let d = backoff(a);
            assert!(d <= Duration::from_secs(10), "{d:?}");
            assert!(d >= Duration::from_millis(125), "{d:?}");
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some(" 0.5 ")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("99999")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some("1e30")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |v| retry_after_at(Some(v), now);
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("Thu, 22 Oct 2015 07:28:00 GMT"), Some(RETRY_AFTER_MAX));
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            at("Wednesday, 21-Oct-15 07:28:10 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(at("Wed Oct 21 07:28:05 2015"), Some(Duration::from_secs(5)));
    }

    #[test]
    fn a_submit_is_retried_only_when_it_never_arrived() {
        let t0 = Instant::now();
        let mut r = Retry::new(Kind::Submit, Duration::from_secs(60), t0);
        assert!(matches!(
            r.decide(Attempt::Failed(NetKind::Unreachable), t0),
            Decision::Retry(_)
        ));
        for k in [NetKind::Timeout, NetKind::BrokeOff, NetKind::BadAnswer] {
            assert_eq!(r.decide(Attempt::Failed(k), t0), Decision::GiveUp, "{k:?}");
        }
        let a = |status| Attempt::Answered {
            status,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            r.decide(a(429), t0),
            Decision::Retry(Duration::from_secs(3))
        );
        assert_eq!(r.decide(a(502), t0), Decision::Done);
        assert_eq!(r.decide(a(200), t0), Decision::Done);
    }

    #[test]
    fn reads_retry_transient_failures_within_the_window() {
        let t0 = Instant::now();
        let mut r = Retry::new(Kind::Idempotent, Duration::from_secs(5), t0);
        let a = |status| Attempt::Answered {
            status,
            retry_after: None,
        };
        assert!(matches!(r.decide(a(503), t0), Decision::Retry(_)));
        assert!(matches!(
            r.decide(Attempt::Failed(NetKind::BadAnswer), t0),
            Decision::Retry(_)
        ));
        assert_eq!(r.decide(a(404), t0), Decision::Done);
        // The clock is a parameter: past the window, give up.
        let later = t0 + Duration::from_secs(6);
        assert_eq!(r.decide(a(503), later), Decision::GiveUp);
        assert_eq!(
            r.decide(Attempt::Failed(NetKind::TooLarge), t0),
            Decision::GiveUp
        );
    }

    #[test]
    fn urls_in_error_text_are_shown_without_credentials() {
        let t = "error sending request for url (http://me:pw@127.0.0.1:1/object_info): refused";
        assert_eq!(
            display_url_in(t),
            "error sending request for url (http://127.0.0.1:1/object_info): refused"
        );
    }
}
