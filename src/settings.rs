//! The command line resolved once into plain settings: where the job goes and with which
//! credentials, the client ID, the output policy, the deadline and how to report. Every flag is
//! validated here and nowhere else, and the precedence is one rule: **a flag beats the
//! environment, the environment beats the default** — an environment variable never sends a job
//! somewhere other than where a flag pointed. Nothing below the commands imports `cli`.

use crate::cli::{CancelArgs, OutputArgs, RunpodTarget, SchemaSource, SendArgs, StatusArgs};
use crate::error::{Error, Result};
use crate::inject::{ImageArg, InjectOptions, SeedChoice, SetArg};
use crate::redacted::{display_url, Secret, Secrets};
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The client ID used when neither `--client-id` nor `COMFY_CLIENT_ID` is given: the same one
/// the RunPod worker-comfyui handler uses, so a server sees one stable identity.
pub const DEFAULT_CLIENT_ID: &str = "runpod-worker-stable-client";
/// ComfyUI's default listen address.
pub const DEFAULT_COMFY_URL: &str = "http://127.0.0.1:8188";
/// RunPod's API base; the endpoint ID is appended.
pub const RUNPOD_API_BASE: &str = "https://api.runpod.ai/v2";
/// How long RunPod status polls keep retrying through failures (`COMFYCTL_RUNPOD_RETRY_WINDOW`).
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// Reads one environment variable (a parameter, so tests can resolve without touching the
/// process environment).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A ComfyUI server: base URL (no credentials, trailing slash), headers (sensitive), secrets.
#[derive(Debug, Clone)]
pub struct ComfyServer {
    base: Url,
    pub headers: HeaderMap,
    pub secrets: Secrets,
    /// How a printed command reaches this server again: `--url URL` (with `USER:PASSWORD@`
    /// standing for credentials, which are never printed), nothing when it came from COMFY_URL,
    /// and a `--header 'NAME: …'` for each header given.
    pub again: String,
}

impl ComfyServer {
    /// Parses a server URL (`http(s)://[user:pass@]host[:port][/base/]`; a bare `host:port` means
    /// `http://`) and `Name: value` header arguments. Nothing is sent.
    pub fn parse(flag: &str, url: &str, header_args: &[String]) -> Result<Self> {
        let raw = url.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("http://{raw}")
        };
        let mut base = Url::parse(&with_scheme).map_err(|e| {
            Error::Usage(format!(
                "{flag} '{}': not a URL ({e}); expected e.g. http://127.0.0.1:8188",
                display_url(raw)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Usage(format!(
                "{flag}: scheme '{}' is not supported; use http:// or https:// (the websocket follows as ws:// or wss://)",
                base.scheme()
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(Error::Usage(format!(
                "{flag} '{}': no host; expected e.g. http://127.0.0.1:8188",
                display_url(raw)
            )));
        }
        let mut headers = HeaderMap::new();
        let mut secrets = Secrets::new();
        let had_userinfo = !base.username().is_empty() || base.password().is_some();
        if !base.username().is_empty() || base.password().is_some() {
            // Userinfo is percent-encoded (RFC 3986), not form-encoded: a '+' stays a '+'.
            let user = percent_decode(base.username());
            let pass = percent_decode(base.password().unwrap_or(""));
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| Error::Usage(format!("{flag}: the credentials cannot be sent")))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
            if !pass.is_empty() {
                secrets.add(Secret::new(pass.clone()));
                secrets.add(Secret::new(base.password().unwrap_or("").to_string()));
            }
            secrets.add(Secret::new(token));
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
            let (name, value) = parse_header(h)?;
            if name == reqwest::header::ORIGIN {
                return Err(Error::Usage(
                    "--header Origin: ComfyUI answers 403 to a loopback request whose Origin differs from Host; comfyctl sends no Origin on purpose".into(),
                ));
            }
            // The credential part of `Bearer xyz` / `Basic xyz`, and the whole value.
            let text = value.to_str().unwrap_or("").to_string();
            if let Some(last) = text.rsplit(' ').next() {
                secrets.add(Secret::new(last));
            }
            secrets.add(Secret::new(text));
            headers.insert(name, value);
        }
        let shown = base.as_str().trim_end_matches('/').to_string();
        let mut again = match (flag, had_userinfo) {
            ("COMFY_URL", _) => String::new(),
            (_, true) => format!(
                "--url {}",
                crate::redacted::shell_quote(&shown.replacen("://", "://USER:PASSWORD@", 1))
            ),
            (_, false) => format!("--url {}", crate::redacted::shell_quote(&shown)),
        };
        for name in headers
            .keys()
            .filter(|k| *k != AUTHORIZATION || !had_userinfo)
        {
            again.push_str(&format!(" --header '{name}: …'"));
        }
        Ok(ComfyServer {
            base,
            headers,
            secrets,
            again: again.trim().to_string(),
        })
    }

    /// The server as shown to the user: the base URL without credentials or trailing slash.
    pub fn shown(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
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
}

/// Parses `Name: value` into a header whose value is marked sensitive. The value is never
/// echoed in an error, even a malformed one.
pub fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(Error::Usage(
            "--header: expected 'Name: value' (e.g. --header 'Authorization: Bearer TOKEN'); the argument has no ':' (its text is not shown, as it may be a secret)".into(),
        ));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        Error::Usage(format!(
            "--header: '{}' is not a header name",
            crate::redacted::escape_controls(name.trim())
        ))
    })?;
    let mut v = HeaderValue::from_str(value.trim()).map_err(|_| {
        Error::Usage(format!(
            "--header {name}: the value contains characters that cannot be sent in a header"
        ))
    })?;
    v.set_sensitive(true);
    Ok((name, v))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A RunPod endpoint: base URL, endpoint ID (when on api.runpod.ai), key, retry window.
#[derive(Debug, Clone)]
pub struct RunpodEndpoint {
    /// Requests go here (may carry userinfo for a proxy; never shown).
    pub base: String,
    /// The base as shown.
    pub shown: String,
    pub endpoint: Option<String>,
    pub key: Option<Secret>,
    pub headers: HeaderMap,
    pub secrets: Secrets,
    pub retry_window: Duration,
    /// The flags that reach this endpoint again, for commands printed to be pasted.
    pub flags: String,
}

/// Where a job goes.
#[derive(Debug, Clone)]
pub enum Target {
    Comfy(ComfyServer),
    Runpod(RunpodEndpoint),
}

impl Target {
    /// The target as shown (no credentials).
    pub fn shown(&self) -> String {
        match self {
            Target::Comfy(s) => s.shown(),
            Target::Runpod(r) => r.shown.clone(),
        }
    }
}

/// The target flags of one command line.
#[derive(Debug, Clone, Default)]
pub struct TargetFlags<'a> {
    pub url: Option<&'a str>,
    pub headers: &'a [String],
    pub runpod: Option<&'a RunpodTarget>,
}

/// Resolves `--url` / `--endpoint` / `--runpod-url` and their environment variables into one
/// target. Two explicit targets are an error; a flag's target ignores the other kind's
/// environment; with no flag, RUNPOD_URL / RUNPOD_ENDPOINT_ID select RunPod and COMFY_URL a
/// ComfyUI server, and both kinds in the environment at once are an error.
pub fn resolve_target(f: &TargetFlags, env: Env) -> Result<Target> {
    let rp = f.runpod.cloned().unwrap_or_default();
    let rp_flag = rp.endpoint.is_some() || rp.runpod_url.is_some();
    if f.url.is_some() && rp_flag {
        return Err(Error::Usage(format!(
            "--url names a ComfyUI server and {} a RunPod endpoint: give one target",
            if rp.endpoint.is_some() {
                "--endpoint"
            } else {
                "--runpod-url"
            }
        )));
    }
    if rp.endpoint.is_some() && rp.runpod_url.is_some() {
        return Err(Error::Usage(
            "--endpoint and --runpod-url both name a RunPod endpoint: give one (--runpod-url replaces the whole base URL)".into(),
        ));
    }
    if let Some(u) = f.url {
        return Ok(Target::Comfy(ComfyServer::parse("--url", u, f.headers)?));
    }
    if rp.endpoint.is_some() || rp.runpod_url.is_some() {
        return Ok(Target::Runpod(runpod_endpoint(
            rp.endpoint.as_deref(),
            rp.runpod_url.as_deref(),
            rp.api_key_file.as_ref(),
            ("--endpoint", "--runpod-url"),
            env,
        )?));
    }
    let env_url = env("RUNPOD_URL");
    let env_endpoint = env("RUNPOD_ENDPOINT_ID");
    let env_comfy = env("COMFY_URL");
    if env_url.is_some() || env_endpoint.is_some() {
        if env_comfy.is_some() {
            return Err(Error::Usage(format!(
                "COMFY_URL and {} are both set, so it is unclear where to send: pass --url URL or --endpoint ID",
                if env_url.is_some() { "RUNPOD_URL" } else { "RUNPOD_ENDPOINT_ID" }
            )));
        }
        // RUNPOD_URL replaces the whole base, as --runpod-url does.
        let (endpoint, url) = match &env_url {
            Some(u) => (None, Some(u.as_str())),
            None => (env_endpoint.as_deref(), None),
        };
        return Ok(Target::Runpod(runpod_endpoint(
            endpoint,
            url,
            rp.api_key_file.as_ref(),
            ("RUNPOD_ENDPOINT_ID", "RUNPOD_URL"),
            env,
        )?));
    }
    let url = env_comfy.unwrap_or_else(|| DEFAULT_COMFY_URL.to_string());
    let flag = if env("COMFY_URL").is_some() {
        "COMFY_URL"
    } else {
        "--url"
    };
    Ok(Target::Comfy(ComfyServer::parse(flag, &url, f.headers)?))
}

fn runpod_endpoint(
    endpoint: Option<&str>,
    url: Option<&str>,
    key_file: Option<&PathBuf>,
    names: (&str, &str),
    env: Env,
) -> Result<RunpodEndpoint> {
    let key = read_key(key_file, env)?;
    let mut secrets = Secrets::new();
    if let Some(k) = &key {
        secrets.add(k.clone());
    }
    let mut headers = HeaderMap::new();
    let (base, shown, flags) = match (url, endpoint) {
        (Some(u), _) => {
            let mut parsed = Url::parse(u.trim()).map_err(|e| {
                Error::Usage(format!(
                    "{} '{}': not a URL ({e}); e.g. http://127.0.0.1:8000",
                    names.1,
                    display_url(u)
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Usage(format!(
                    "{} '{}': only http and https are supported",
                    names.1,
                    display_url(u)
                )));
            }
            let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
            if had_userinfo {
                let user = percent_decode(parsed.username());
                let pass = percent_decode(parsed.password().unwrap_or(""));
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                if key.is_none() {
                    let mut v = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                        Error::Usage(format!("{}: the credentials cannot be sent", names.1))
                    })?;
                    v.set_sensitive(true);
                    headers.insert(AUTHORIZATION, v);
                }
                secrets.add(Secret::new(pass));
                secrets.add(Secret::new(parsed.password().unwrap_or("").to_string()));
                secrets.add(Secret::new(token));
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
            }
            let base = parsed.as_str().trim_end_matches('/').to_string();
            let shown = display_url(&base);
            let flag = match (names.1 == "--runpod-url", had_userinfo) {
                (false, _) => String::new(),
                (true, true) => format!(
                    "--runpod-url {}",
                    crate::redacted::shell_quote(&shown.replacen("://", "://USER:PASSWORD@", 1))
                ),
                (true, false) => format!("--runpod-url {}", crate::redacted::shell_quote(&shown)),
            };
            (base, shown, flag)
        }
        (None, Some(id)) => {
            let id = id.trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Error::Usage(format!(
                    "{} '{}': a RunPod endpoint ID has only letters, digits, '-' and '_' (find it on the endpoint's page in the RunPod console)",
                    names.0,
                    crate::redacted::escape_controls(id)
                )));
            }
            if key.is_none() {
                return Err(Error::Usage(
                    "no RunPod API key: set RUNPOD_API_KEY or pass --api-key-file FILE (there is deliberately no flag that takes the key itself)".into(),
                ));
            }
            let base = format!("{RUNPOD_API_BASE}/{id}");
            let flag = if names.0 == "--endpoint" {
                format!("--endpoint {id}")
            } else {
                String::new()
            };
            (base.clone(), base, flag)
        }
        (None, None) => {
            return Err(Error::Usage(
                "no RunPod endpoint: pass --endpoint ID (or set RUNPOD_ENDPOINT_ID), or --runpod-url URL".into(),
            ))
        }
    };
    let retry_window = match env("COMFYCTL_RUNPOD_RETRY_WINDOW") {
        None => DEFAULT_RETRY_WINDOW,
        Some(s) => crate::cli::parse_duration(&s)
            .map_err(|e| Error::Usage(format!("COMFYCTL_RUNPOD_RETRY_WINDOW: {e}")))?,
    };
    // The key file goes along whether the target came from a flag or the environment: without
    // it a pasted command would be refused (the environment's key may differ or be unset).
    let flags = match key_file {
        Some(p) => format!(
            "{flags} --api-key-file {}",
            crate::redacted::shell_quote(&p.display().to_string())
        )
        .trim()
        .to_string(),
        None => flags,
    };
    Ok(RunpodEndpoint {
        endpoint: endpoint
            .filter(|_| url.is_none())
            .map(|s| s.trim().to_string()),
        base,
        shown,
        key,
        headers,
        secrets,
        retry_window,
        flags,
    })
}

/// Reads the API key: `--api-key-file` first, else `RUNPOD_API_KEY`. Never from a flag value.
fn read_key(file: Option<&PathBuf>, env: Env) -> Result<Option<Secret>> {
    if let Some(p) = file {
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
        if k.lines().count() > 1 || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::Usage(format!(
                "--api-key-file {}: expected one API key on one line (the file has more; its contents are not shown)",
                p.display()
            )));
        }
        return Ok(Some(Secret::new(k)));
    }
    Ok(env("RUNPOD_API_KEY")
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(Secret::new))
}

/// Output saving policy.
#[derive(Debug, Clone)]
pub struct OutputPolicy {
    pub dir: PathBuf,
    pub overwrite: bool,
    pub allow_empty: bool,
}

/// How to report.
#[derive(Debug, Clone, Copy)]
pub struct ReportSettings {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

fn output_and_report(o: &OutputArgs) -> (OutputPolicy, ReportSettings) {
    (
        OutputPolicy {
            dir: o.output_dir.clone(),
            overwrite: o.overwrite,
            allow_empty: o.allow_empty,
        },
        ReportSettings {
            json: o.json,
            quiet: o.quiet,
            verbose: o.verbose,
        },
    )
}

/// Whether and how to check the workflow against a node schema before queueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// ComfyUI: check when the server serves its schema; RunPod: only with `--object-info`.
    Auto,
    /// Asked for: a missing schema is a warning.
    On,
    Off,
}

/// RunPod-only send options.
#[derive(Debug, Clone, Default)]
pub struct RunpodOptions {
    pub sync: bool,
    pub poll_interval: Option<Duration>,
    pub execution_timeout: Option<Duration>,
    pub ttl: Option<Duration>,
    pub webhook: Option<String>,
}

/// Everything `send` needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct SendSettings {
    pub workflow: PathBuf,
    pub names: Option<PathBuf>,
    pub no_normalize: bool,
    pub inject: InjectOptions,
    pub object_info: Option<PathBuf>,
    pub preflight: Preflight,
    pub target: Target,
    pub client_id: String,
    pub include_temp: bool,
    pub runpod: RunpodOptions,
    pub output: OutputPolicy,
    pub report: ReportSettings,
    /// `None`: no deadline (`--timeout 0` or `none`).
    pub deadline: Option<Duration>,
    /// Write a manifest beside the outputs (not `--no-manifest`).
    pub manifest: bool,
}

/// `--image`, `--prompt`, `--negative`, `--seed` / `--random-seed`, `--set` resolved (the
/// `--set` syntax checked).
pub fn inject_options(a: &crate::cli::InjectArgs) -> Result<InjectOptions> {
    Ok(InjectOptions {
        images: a.images.iter().map(|s| ImageArg::parse(s)).collect(),
        prompt: a.prompt.clone(),
        negative: a.negative.clone(),
        seed: match (a.seed, a.random_seed) {
            (Some(s), _) => Some(SeedChoice::Fixed(s)),
            (None, true) => Some(SeedChoice::Random),
            (None, false) => None,
        },
        sets: a
            .sets
            .iter()
            .map(|s| SetArg::parse(s))
            .collect::<Result<_>>()?,
    })
}

/// Flags meant for the other kind of target are an error, never silently dropped: with a
/// ComfyUI target (`on_comfy`) the first set of `runpod_only`, else the first set of
/// `comfy_only`, is refused, naming the target `shown` that the command (`what`) resolved to.
pub fn refuse_other_target_flags(
    on_comfy: bool,
    shown: &str,
    what: &str,
    runpod_only: &[(&str, bool)],
    comfy_only: &[(&str, bool)],
) -> Result<()> {
    let (flags, msg) = if on_comfy {
        (
            runpod_only,
            format!("applies to RunPod only, but this {what} goes to the ComfyUI server {shown}; pass --endpoint ID or --runpod-url URL to use RunPod"),
        )
    } else {
        (
            comfy_only,
            format!("applies to a ComfyUI server only, but this {what} goes to the RunPod endpoint {shown}"),
        )
    };
    match flags.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(Error::Usage(format!("{flag} {msg}"))),
        None => Ok(()),
    }
}

/// The client ID: `--client-id`, else `COMFY_CLIENT_ID`, else the default.
fn client_id(flag: Option<&str>, env: Env) -> Result<String> {
    let id = flag
        .map(str::to_string)
        .or_else(|| env("COMFY_CLIENT_ID"))
        .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_string());
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control()) {
        return Err(Error::Usage(
            "--client-id: expected 1 to 200 printable characters".into(),
        ));
    }
    Ok(id)
}

impl SendSettings {
    pub fn resolve(a: &SendArgs, env: Env) -> Result<Self> {
        let target = resolve_target(
            &TargetFlags {
                url: a.url.as_deref(),
                headers: &a.headers,
                runpod: Some(&a.runpod),
            },
            env,
        )?;
        let (output, report) = output_and_report(&a.out);
        let preflight = if a.no_preflight {
            Preflight::Off
        } else if a.preflight {
            Preflight::On
        } else {
            Preflight::Auto
        };
        refuse_other_target_flags(
            matches!(target, Target::Comfy(_)),
            &target.shown(),
            "run",
            &[
                ("--sync", a.sync),
                ("--webhook", a.webhook.is_some()),
                ("--poll-interval", a.poll_interval.is_some()),
                ("--execution-timeout", a.execution_timeout.is_some()),
                ("--ttl", a.ttl.is_some()),
                ("--api-key-file", a.runpod.api_key_file.is_some()),
            ],
            &[
                ("--header", !a.headers.is_empty()),
                ("--include-temp", a.include_temp),
            ],
        )?;
        if matches!(target, Target::Runpod(_))
            && preflight == Preflight::On
            && a.object_info.is_none()
        {
            return Err(Error::Usage(
                "--preflight on RunPod needs the worker's node schema: add --object-info FILE (e.g. saved with 'comfyctl schema pull' from a ComfyUI of the same image)".into(),
            ));
        }
        const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
        if let Some(t) = a.execution_timeout {
            if t < Duration::from_secs(5) || t > WEEK {
                return Err(Error::Usage(format!(
                    "--execution-timeout {}: RunPod accepts 5s to 7 days",
                    humantime::format_duration(t)
                )));
            }
        }
        if let Some(t) = a.ttl {
            if t < Duration::from_secs(10) || t > WEEK {
                return Err(Error::Usage(format!(
                    "--ttl {}: RunPod accepts 10s to 7 days (it counts from submission and covers queue plus run time)",
                    humantime::format_duration(t)
                )));
            }
        }
        if let Some(t) = a.poll_interval {
            if t < Duration::from_millis(50) {
                return Err(Error::Usage(format!(
                    "--poll-interval {}: at least 50ms",
                    humantime::format_duration(t)
                )));
            }
        }
        if let Some(w) = &a.webhook {
            match Url::parse(w) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "--webhook '{}': not an http(s) URL",
                        display_url(w)
                    )))
                }
            }
        }
        let inject = inject_options(&a.inject)?;
        Ok(SendSettings {
            workflow: a.workflow.clone(),
            names: a.names.clone(),
            no_normalize: a.no_normalize,
            inject,
            object_info: a.object_info.clone(),
            preflight,
            client_id: client_id(a.client_id.as_deref(), env)?,
            target,
            include_temp: a.include_temp,
            runpod: RunpodOptions {
                sync: a.sync,
                poll_interval: a.poll_interval,
                execution_timeout: a.execution_timeout,
                ttl: a.ttl,
                webhook: a.webhook.clone(),
            },
            output,
            report,
            deadline: a.timeout.0,
            manifest: !a.no_manifest,
        })
    }
}

/// `comfyctl status` settings.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub job_id: String,
    pub target: Target,
    pub wait: bool,
    pub save: bool,
    pub output: OutputPolicy,
    pub report: ReportSettings,
    pub deadline: Option<Duration>,
}

fn runpod_only(flags: &RunpodTarget, env: Env, command: &str) -> Result<RunpodEndpoint> {
    let (endpoint, url, names) = if flags.endpoint.is_some() && flags.runpod_url.is_some() {
        return Err(Error::Usage(
            "--endpoint and --runpod-url both name a RunPod endpoint: give one".into(),
        ));
    } else if flags.is_set() {
        (
            flags.endpoint.clone(),
            flags.runpod_url.clone(),
            ("--endpoint", "--runpod-url"),
        )
    } else if let Some(u) = env("RUNPOD_URL") {
        (None, Some(u), ("RUNPOD_ENDPOINT_ID", "RUNPOD_URL"))
    } else if let Some(e) = env("RUNPOD_ENDPOINT_ID") {
        (Some(e), None, ("RUNPOD_ENDPOINT_ID", "RUNPOD_URL"))
    } else {
        return Err(Error::Usage(format!(
            "no RunPod endpoint: '{command}' works on RunPod jobs; pass --endpoint ID (or set RUNPOD_ENDPOINT_ID), or --runpod-url URL"
        )));
    };
    runpod_endpoint(
        endpoint.as_deref(),
        url.as_deref(),
        flags.api_key_file.as_ref(),
        names,
        env,
    )
}

fn job_id(id: &str) -> Result<String> {
    let id = id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(Error::Usage(
            "JOB_ID: expected the job ID that 'comfyctl send' printed".into(),
        ));
    }
    Ok(id.to_string())
}

impl StatusSettings {
    pub fn resolve(a: &StatusArgs, env: Env) -> Result<Self> {
        let (output, report) = output_and_report(&a.out);
        let any = a.url.is_some()
            || a.runpod.is_set()
            || ["RUNPOD_URL", "RUNPOD_ENDPOINT_ID", "COMFY_URL"]
                .iter()
                .any(|v| env(v).is_some());
        if !any {
            return Err(Error::Usage(
                "no RunPod endpoint or ComfyUI server: pass --endpoint ID or --runpod-url URL for a RunPod job, or --url URL for a ComfyUI prompt (or set RUNPOD_ENDPOINT_ID / COMFY_URL)".into(),
            ));
        }
        let target = resolve_target(
            &TargetFlags {
                url: a.url.as_deref(),
                headers: &a.headers,
                runpod: Some(&a.runpod),
            },
            env,
        )?;
        refuse_other_target_flags(
            matches!(target, Target::Comfy(_)),
            &target.shown(),
            "status",
            &[("--api-key-file", a.runpod.api_key_file.is_some())],
            &[("--header", !a.headers.is_empty())],
        )?;
        Ok(StatusSettings {
            job_id: job_id(&a.job_id)?,
            target,
            wait: a.wait,
            save: a.save,
            output,
            report,
            deadline: a.timeout.0.filter(|_| a.wait),
        })
    }
}

/// `comfyctl cancel` settings.
#[derive(Debug, Clone)]
pub struct CancelSettings {
    pub job_id: String,
    pub target: RunpodEndpoint,
    pub json: bool,
}

impl CancelSettings {
    pub fn resolve(a: &CancelArgs, env: Env) -> Result<Self> {
        Ok(CancelSettings {
            job_id: job_id(&a.job_id)?,
            target: runpod_only(&a.runpod, env, "cancel")?,
            json: a.json,
        })
    }
}

/// Where a node schema comes from.
#[derive(Debug, Clone)]
pub enum SchemaFrom {
    None,
    File(PathBuf),
    Server {
        server: Box<ComfyServer>,
        offline: bool,
    },
}

impl SchemaFrom {
    pub fn resolve(s: &SchemaSource) -> Result<Self> {
        if let Some(p) = &s.object_info {
            return Ok(SchemaFrom::File(p.clone()));
        }
        match &s.server {
            Some(u) => Ok(SchemaFrom::Server {
                server: Box::new(ComfyServer::parse("--server", u, &s.headers)?),
                offline: s.offline,
            }),
            None if s.offline => Err(Error::Usage(
                "--offline needs --server URL to know which cached schema to use (see 'comfyctl schema list')".into(),
            )),
            None => Ok(SchemaFrom::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn rp(endpoint: Option<&str>, url: Option<&str>) -> RunpodTarget {
        RunpodTarget {
            endpoint: endpoint.map(str::to_string),
            runpod_url: url.map(str::to_string),
            api_key_file: None,
        }
    }

    #[test]
    fn a_flag_beats_the_environment() {
        let env = env_of(&[
            ("RUNPOD_URL", "http://127.0.0.1:9"),
            ("RUNPOD_ENDPOINT_ID", "env-ep"),
            ("RUNPOD_API_KEY", "rpa_key123"),
        ]);
        let none = rp(None, None);
        let t = resolve_target(
            &TargetFlags {
                url: Some("http://127.0.0.1:8188"),
                headers: &[],
                runpod: Some(&none),
            },
            &env,
        )
        .unwrap();
        assert!(matches!(t, Target::Comfy(_)), "{t:?}");
        let ep = rp(Some("flag-ep"), None);
        let t = resolve_target(
            &TargetFlags {
                url: None,
                headers: &[],
                runpod: Some(&ep),
            },
            &env,
        )
        .unwrap();
        match t {
            Target::Runpod(r) => {
                assert_eq!(r.base, "https://api.runpod.ai/v2/flag-ep");
                assert_eq!(r.flags, "--endpoint flag-ep");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_targets_are_an_error() {
        let env = env_of(&[]);
        let u = rp(None, Some("http://127.0.0.1:9"));
        let e = resolve_target(
            &TargetFlags {
                url: Some("http://h:1"),
                headers: &[],
                runpod: Some(&u),
            },
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("give one target"), "{e}");
        let both = rp(Some("x"), Some("http://127.0.0.1:9"));
        assert!(resolve_target(
            &TargetFlags {
                url: None,
                headers: &[],
                runpod: Some(&both)
            },
            &env
        )
        .is_err());
        let env = env_of(&[("COMFY_URL", "http://a:1"), ("RUNPOD_URL", "http://b:2")]);
        let none = rp(None, None);
        let e = resolve_target(
            &TargetFlags {
                url: None,
                headers: &[],
                runpod: Some(&none),
            },
            &env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("both set"), "{e}");
    }

    #[test]
    fn url_credentials_are_percent_decoded_and_secret() {
        let s =
            ComfyServer::parse("--url", "http://me:pa+ss%40x@127.0.0.1:8188/comfy", &[]).unwrap();
        assert_eq!(s.shown(), "http://127.0.0.1:8188/comfy");
        let auth = s.headers.get(AUTHORIZATION).unwrap();
        assert!(auth.is_sensitive());
        let expect = base64::engine::general_purpose::STANDARD.encode("me:pa+ss@x");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {expect}"));
        assert_eq!(s.secrets.scrub("echo pa+ss@x"), "echo (redacted)");
        assert!(!format!("{s:?}").contains("pa+ss"));
        assert_eq!(
            s.url("prompt").as_str(),
            "http://127.0.0.1:8188/comfy/prompt"
        );
        assert_eq!(
            s.ws_url("abc").as_str(),
            "ws://127.0.0.1:8188/comfy/ws?clientId=abc"
        );
    }

    #[test]
    fn printed_commands_name_the_server_but_never_its_credentials() {
        let s = ComfyServer::parse(
            "--url",
            "http://me:pw123456@h:8188",
            &["X-Token: abcdef12".into()],
        )
        .unwrap();
        assert_eq!(
            s.again,
            "--url http://USER:PASSWORD@h:8188 --header 'x-token: …'"
        );
        let e = ComfyServer::parse("COMFY_URL", "http://me:pw123456@h:8188", &[]).unwrap();
        assert_eq!(e.again, "");
        let p = ComfyServer::parse("--url", "http://h:8188", &[]).unwrap();
        assert_eq!(p.again, "--url http://h:8188");
    }

    #[test]
    fn bare_host_port_means_http() {
        let s = ComfyServer::parse("--url", "localhost:8188", &[]).unwrap();
        assert_eq!(s.shown(), "http://localhost:8188");
        assert!(ComfyServer::parse("--url", "ftp://h", &[]).is_err());
    }

    #[test]
    fn headers_never_echo_their_value() {
        let e = parse_header("BearerTOKEN123").unwrap_err();
        assert!(!e.to_string().contains("TOKEN123"), "{e}");
        let (n, v) = parse_header("X-Api-Key: abc123").unwrap();
        assert_eq!(n.as_str(), "x-api-key");
        assert!(v.is_sensitive());
        assert!(ComfyServer::parse("--url", "http://h", &["Origin: http://x".into()]).is_err());
    }

    #[test]
    fn a_malformed_retry_window_is_an_error() {
        let env = env_of(&[("COMFYCTL_RUNPOD_RETRY_WINDOW", "soon")]);
        let u = rp(None, Some("http://127.0.0.1:9"));
        let e = resolve_target(
            &TargetFlags {
                url: None,
                headers: &[],
                runpod: Some(&u),
            },
            &env,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("COMFYCTL_RUNPOD_RETRY_WINDOW"),
            "{e}"
        );
    }
}
