//! Reading `/run`, `/runsync` and `/status` answers without copying their payload.
//!
//! Why borrowed parsing: a finished job's `/status` body carries every output file as one base64
//! string. Parsing it into a `serde_json::Value` would copy each string once more (and a 100 MB
//! video would need 130 MB body + 130 MB string + the decode). Here the body is parsed into
//! [`RawValue`] slices and `&str`s that point into the body buffer, so the only big allocation is
//! the body itself; the decoder then streams from that slice to disk.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The common shape of `/run`, `/runsync` and `/status` answers.
#[derive(Debug, Deserialize)]
pub struct JobBody<'a> {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(rename = "delayTime", default)]
    pub delay_time: Option<Value>,
    #[serde(rename = "executionTime", default)]
    pub execution_time: Option<Value>,
    #[serde(rename = "workerId", default)]
    pub worker_id: Option<String>,
    #[serde(borrow, default)]
    pub output: Option<&'a RawValue>,
    #[serde(default)]
    pub error: Option<Value>,
}

impl<'a> JobBody<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not the JSON RunPod sends: {e}"))
    }

    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }

    pub fn delay_ms(&self) -> Option<u64> {
        ms(self.delay_time.as_ref())
    }

    pub fn execution_ms(&self) -> Option<u64> {
        ms(self.execution_time.as_ref())
    }

    /// The output, unless absent or `null`.
    pub fn output(&self) -> Option<&'a RawValue> {
        self.output.filter(|r| r.get().trim() != "null")
    }
}

fn ms(v: Option<&Value>) -> Option<u64> {
    let f = v?.as_f64()?;
    (f.is_finite() && f >= 0.0).then_some(f as u64)
}

/// Whether RunPod will not change this status any more.
pub fn is_final(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT")
}

/// Where one output file's bytes are.
#[derive(Debug)]
pub enum Source<'a> {
    /// Base64 (maybe with a `data:…;base64,` prefix), borrowed from the body when possible.
    Base64(Cow<'a, str>),
    /// A URL to download (S3 presigned).
    Url(String),
    /// A path on the worker's disk: `rp_upload` without bucket credentials "uploads" there.
    WorkerPath(String),
}

/// One output file announced by the handler.
#[derive(Debug)]
pub struct OutputFile<'a> {
    /// The name the worker gave it (sanitized later by the outputs module).
    pub name: String,
    /// Where it sat in the output (`images[0]`, `message`), for messages.
    pub place: String,
    pub source: Source<'a>,
}

/// Everything a handler's `output` says.
#[derive(Debug, Default)]
pub struct Output<'a> {
    pub files: Vec<OutputFile<'a>>,
    /// `output.errors`: non-fatal warnings.
    pub warnings: Vec<String>,
    /// `output.status` (`success_no_images`, `success_no_files`, ...).
    pub status: Option<String>,
    /// `output.error` (+ `details`): the handler reported a failure.
    pub error: Option<String>,
    /// A text message that is not a file (`output.message` that is not base64 or a URL).
    pub note: Option<String>,
}

/// A JSON string value as `&str` pointing into the body when it has no escapes.
fn str_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    if let Ok(s) = serde_json::from_str::<&str>(raw.get()) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(raw.get())
        .ok()
        .map(Cow::Owned)
}

fn is_url(s: &str) -> bool {
    let l = s.trim_start();
    l.starts_with("https://") || l.starts_with("http://")
}

/// Heuristic for the legacy `output.message`: a file when it is a data URI, or long and made of
/// base64 characters only; otherwise a plain text message.
fn looks_like_base64(s: &str) -> bool {
    s.starts_with("data:")
        || (s.len() >= 64
            && s.bytes().take(4096).all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
            }))
}

/// The last path segment of a URL, for naming a download that came without a file name.
fn url_name(u: &str) -> String {
    url::Url::parse(u)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "output".to_string())
}

/// Value → readable text (strings as they are, anything else as compact JSON).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default)]
    filename: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    url: Option<&'a RawValue>,
}

/// Reads a handler output of the worker-comfyui family. Every key whose value is a list of
/// `{filename, type, data}` objects counts (`images` in worker-comfyui; `videos`/`gifs` in forks).
pub fn parse_output(raw: &RawValue) -> Result<Output<'_>, String> {
    let mut out = Output::default();
    let t = raw.get().trim_start();
    if t.starts_with('"') {
        // Legacy (< 5.0): the whole output is one string.
        let s = str_of(raw).ok_or("output is an unreadable string")?;
        push_message(&mut out, s, "output");
        return Ok(out);
    }
    if !t.starts_with('{') {
        return Err(format!(
            "output is neither an object nor a string: {}",
            t.chars().take(200).collect::<String>()
        ));
    }
    let map: BTreeMap<String, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| format!("output is not an object: {e}"))?;
    for (key, val) in &map {
        let vt = val.get().trim_start();
        match key.as_str() {
            "errors" => {
                let v: Value = serde_json::from_str(val.get()).unwrap_or(Value::Null);
                match v {
                    Value::Array(a) => out.warnings.extend(a.iter().map(text)),
                    Value::Null => {}
                    other => out.warnings.push(text(&other)),
                }
            }
            "status" => {
                out.status = str_of(val).map(Cow::into_owned);
            }
            "error" => {
                let v: Value = serde_json::from_str(val.get()).unwrap_or(Value::Null);
                if !v.is_null() {
                    out.error = Some(format_error(&v));
                }
            }
            "message" if vt.starts_with('"') => {
                if let Some(s) = str_of(val) {
                    push_message(&mut out, s, "message");
                }
            }
            _ if vt.starts_with('[') => {
                let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(val.get()) else {
                    continue;
                };
                for (i, item) in items.into_iter().enumerate() {
                    if !item.get().trim_start().starts_with('{') {
                        continue;
                    }
                    let Ok(e) = serde_json::from_str::<Entry>(item.get()) else {
                        continue;
                    };
                    let Some(data) = e.data.or(e.url).and_then(str_of) else {
                        continue;
                    };
                    let place = format!("{key}[{i}]");
                    let kind = e.kind.as_deref().unwrap_or("base64");
                    let source = if kind == "s3_url" || kind == "url" || is_url(&data) {
                        if is_url(&data) {
                            Source::Url(data.trim().to_string())
                        } else {
                            Source::WorkerPath(data.into_owned())
                        }
                    } else {
                        Source::Base64(data)
                    };
                    let name = e
                        .filename
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| match &source {
                            Source::Url(u) => url_name(u),
                            _ => format!("{key}_{i}"),
                        });
                    out.files.push(OutputFile {
                        name,
                        place,
                        source,
                    });
                }
            }
            _ => {}
        }
    }
    if let (Some(err), Some(details)) = (&mut out.error, map.get("details")) {
        if let Ok(Value::Array(d)) = serde_json::from_str::<Value>(details.get()) {
            for x in d {
                err.push_str("\n  ");
                err.push_str(text(&x).trim_end());
            }
        }
    }
    Ok(out)
}

fn push_message<'a>(out: &mut Output<'a>, s: Cow<'a, str>, place: &str) {
    if is_url(&s) {
        out.files.push(OutputFile {
            name: url_name(s.trim()),
            place: place.into(),
            source: Source::Url(s.trim().to_string()),
        });
    } else if looks_like_base64(&s) {
        out.files.push(OutputFile {
            name: "output".into(),
            place: place.into(),
            source: Source::Base64(s),
        });
    } else if !s.trim().is_empty() {
        out.note = Some(s.into_owned());
    }
}

/// Makes a RunPod `error` readable. It is a string, or (for a handler exception) a string that
/// holds JSON `{error_type, error_message, error_traceback, hostname, worker_id, ...}`, or an
/// object. Tracebacks keep their last lines, where the cause is.
pub fn format_error(v: &Value) -> String {
    let parsed;
    let obj = match v {
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('{') {
                parsed = serde_json::from_str::<Value>(t).ok();
                parsed.as_ref().and_then(Value::as_object)
            } else {
                return s.trim_end().to_string();
            }
        }
        Value::Object(o) => Some(o),
        other => return other.to_string(),
    };
    let Some(o) = obj else {
        return text(v);
    };
    let get = |k: &str| o.get(k).map(text).filter(|s| !s.is_empty());
    let mut s = match (
        get("error_type"),
        get("error_message")
            .or_else(|| get("error"))
            .or_else(|| get("message")),
    ) {
        (Some(t), Some(m)) => format!(
            "{m} ({})",
            t.trim_start_matches("<class '").trim_end_matches("'>")
        ),
        (None, Some(m)) => m,
        (Some(t), None) => t,
        (None, None) => Value::Object(o.clone()).to_string(),
    };
    if let Some(w) = get("worker_id").or_else(|| get("hostname")) {
        s.push_str(&format!(" [worker {w}]"));
    }
    if let Some(tb) = get("error_traceback").or_else(|| get("traceback")) {
        let lines: Vec<&str> = tb.lines().filter(|l| !l.trim().is_empty()).collect();
        let keep = lines.len().min(8);
        s.push_str("\n  traceback (last lines):");
        for l in &lines[lines.len() - keep..] {
            s.push_str("\n    ");
            s.push_str(l);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(json: &str) -> Output<'_> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        parse_output(raw).unwrap()
    }

    #[test]
    fn borrows_base64_from_the_body() {
        let body = br#"{"id":"j","status":"COMPLETED","delayTime":12,"executionTime":3400.5,
            "output":{"images":[{"filename":"a.webp","type":"base64","data":"UklGRg=="}],"errors":["w1"]}}"#;
        let j = JobBody::parse(body).unwrap();
        assert_eq!(j.delay_ms(), Some(12));
        assert_eq!(j.execution_ms(), Some(3400));
        let o = parse_output(j.output().unwrap()).unwrap();
        assert_eq!(o.warnings, vec!["w1"]);
        match &o.files[0].source {
            Source::Base64(Cow::Borrowed(s)) => assert_eq!(*s, "UklGRg=="),
            other => panic!("{other:?}"),
        }
        assert_eq!(o.files[0].name, "a.webp");
    }

    #[test]
    fn shapes() {
        let o = out(
            r#"{"images":[{"filename":"x.png","type":"s3_url","data":"https://b.example/08-26/j/abc.png?sig=1"}]}"#,
        );
        assert!(matches!(&o.files[0].source, Source::Url(u) if u.starts_with("https://b.example")));
        let o = out(r#"{"images":[{"type":"s3_url","data":"https://b.example/08-26/j/abc.png"}]}"#);
        assert_eq!(o.files[0].name, "abc.png");
        let o = out(
            r#"{"images":[{"filename":"x.png","type":"s3_url","data":"simulated_uploaded/x.png"}]}"#,
        );
        assert!(matches!(&o.files[0].source, Source::WorkerPath(_)));
        let o = out(r#"{"status":"success_no_images","images":[]}"#);
        assert!(o.files.is_empty());
        assert_eq!(o.status.as_deref(), Some("success_no_images"));
        let long = format!(r#"{{"message":"{}"}}"#, "A".repeat(100));
        let o = out(&long);
        assert_eq!(o.files.len(), 1);
        let o = out(r#"{"message":"all done"}"#);
        assert_eq!(o.note.as_deref(), Some("all done"));
        let o = out(r#""https://b.example/legacy.png""#);
        assert!(matches!(&o.files[0].source, Source::Url(_)));
        let o = out(r#"{"error":"Job processing failed","details":["Node 4: boom"]}"#);
        assert_eq!(
            o.error.as_deref(),
            Some("Job processing failed\n  Node 4: boom")
        );
        let o = out(r#"{"videos":[{"filename":"v.mp4","type":"base64","data":"AAAA"}]}"#);
        assert_eq!(o.files[0].place, "videos[0]");
    }

    #[test]
    fn readable_errors() {
        let inner = serde_json::json!({"error_type":"<class 'AttributeError'>","error_message":"'str' object has no attribute 'keys'",
            "error_traceback":"Traceback (most recent call last):\n  File \"h.py\", line 3\nAttributeError: 'str' object has no attribute 'keys'\n",
            "worker_id":"w-1"});
        let s = format_error(&Value::String(inner.to_string()));
        assert!(
            s.starts_with("'str' object has no attribute 'keys' (AttributeError) [worker w-1]"),
            "{s}"
        );
        assert!(s.contains("traceback (last lines)"), "{s}");
        assert_eq!(format_error(&Value::String("plain".into())), "plain");
    }
}
