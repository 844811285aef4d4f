//! Reading a batch's job file: JSON Lines (one object per line) or CSV with a header row, one
//! job per line, every `send` injection as a field. Every line is read and checked before
//! anything is sent, and every problem is reported at once with its line, job ID and field.

use crate::inject::{ImageArg, InjectOptions, SeedChoice, SetArg};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One job as the file gives it (paths still relative to the job file's directory).
#[derive(Debug, Clone)]
pub struct JobLine {
    /// 1-based line number in the job file.
    pub line: usize,
    /// `id`, or the line number.
    pub id: String,
    pub workflow: Option<PathBuf>,
    pub inject: InjectOptions,
    /// Output subdirectory, relative to `-o`.
    pub out: Option<PathBuf>,
}

/// A problem with one line of the job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub id: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(id) = &self.id {
            write!(f, " (job {id})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The fields a job line may have.
pub const FIELDS: &[&str] = &[
    "id",
    "workflow",
    "image",
    "images",
    "prompt",
    "negative",
    "seed",
    "random_seed",
    "set",
    "out",
];

/// Parses a job file's text. `base` is the directory relative paths are resolved against.
pub fn parse(text: &str, base: &Path) -> (Vec<JobLine>, Vec<LineError>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        parse_jsonl(text, base)
    } else {
        parse_csv(text, base)
    }
}

fn parse_jsonl(text: &str, base: &Path) -> (Vec<JobLine>, Vec<LineError>) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let t = l.trim();
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(o)) => match from_object(&o, line, base) {
                Ok(j) => jobs.push(j),
                Err(mut e) => errors.append(&mut e),
            },
            Ok(other) => errors.push(LineError {
                line,
                id: None,
                field: None,
                message: format!(
                    "expected a JSON object, found {}",
                    crate::workflow::json_kind(&other)
                ),
            }),
            Err(e) => errors.push(LineError {
                line,
                id: None,
                field: None,
                message: format!("not valid JSON: {e}"),
            }),
        }
    }
    (jobs, errors)
}

/// CSV with a header row naming fields; `set.NODE.INPUT` and `image.NODE` columns set those
/// (values parsed as JSON when they parse, else strings), empty cells are absent.
fn parse_csv(text: &str, base: &Path) -> (Vec<JobLine>, Vec<LineError>) {
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = rows.next() else {
        return (jobs, errors);
    };
    let header = split_csv(header);
    for (i, l) in rows {
        let line = i + 1;
        let cells = split_csv(l);
        if cells.len() > header.len() {
            errors.push(LineError {
                line,
                id: None,
                field: None,
                message: format!(
                    "{} cells but the header names {} columns",
                    cells.len(),
                    header.len()
                ),
            });
            continue;
        }
        let mut o = Map::new();
        let mut sets = Map::new();
        let mut images = Map::new();
        for (h, c) in header.iter().zip(cells.iter()) {
            if c.is_empty() {
                continue;
            }
            let v = match h.as_str() {
                "seed" => serde_json::from_str(c).unwrap_or(Value::String(c.clone())),
                "random_seed" => Value::Bool(matches!(c.as_str(), "1" | "true" | "yes")),
                _ => Value::String(c.clone()),
            };
            if let Some(k) = h.strip_prefix("set.") {
                sets.insert(
                    k.to_string(),
                    serde_json::from_str(c).unwrap_or(Value::String(c.clone())),
                );
            } else if let Some(k) = h.strip_prefix("image.") {
                images.insert(k.to_string(), Value::String(c.clone()));
            } else {
                o.insert(h.clone(), v);
            }
        }
        if !sets.is_empty() {
            o.insert("set".into(), Value::Object(sets));
        }
        if !images.is_empty() {
            o.insert("images".into(), Value::Object(images));
        }
        match from_object(&o, line, base) {
            Ok(j) => jobs.push(j),
            Err(mut e) => errors.append(&mut e),
        }
    }
    (jobs, errors)
}

/// Splits one CSV line (RFC 4180 quotes, `""` inside quotes).
fn split_csv(l: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = l.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn from_object(
    o: &Map<String, Value>,
    line: usize,
    base: &Path,
) -> Result<JobLine, Vec<LineError>> {
    let id = match o.get("id") {
        None => line.to_string(),
        Some(Value::String(s)) if valid_id(s) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(vec![LineError {
                line,
                id: None,
                field: Some("id".into()),
                message: "expected 1 to 100 letters, digits, '-', '_' or '.' (it names the job's journal entry and output folder)".into(),
            }])
        }
    };
    let mut errors = Vec::new();
    let err = |field: &str, message: String| LineError {
        line,
        id: Some(id.clone()),
        field: Some(field.to_string()),
        message,
    };
    for k in o.keys() {
        if !FIELDS.contains(&k.as_str()) {
            let hint = crate::suggest::close_match(k, FIELDS)
                .map(|m| format!("; did you mean '{m}'?"))
                .unwrap_or_else(|| format!("; the fields are {}", FIELDS.join(", ")));
            errors.push(err(k, format!("unknown field{hint}")));
        }
    }
    let path = |v: &Value| v.as_str().map(|s| base.join(s));
    let text = |k: &str, errors: &mut Vec<LineError>| match o.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(err(k, "expected a string".into()));
            None
        }
    };
    let workflow = match o.get("workflow") {
        None | Some(Value::Null) => None,
        Some(v) => match path(v) {
            Some(p) => Some(p),
            None => {
                errors.push(err("workflow", "expected a file path".into()));
                None
            }
        },
    };
    let mut images = Vec::new();
    match o.get("image") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => images.push(ImageArg::parse(&base.join(s).to_string_lossy())),
        Some(_) => errors.push(err("image", "expected a file path".into())),
    }
    match o.get("images") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (node, p) in m {
                match p.as_str() {
                    Some(p) => images.push(ImageArg {
                        node: Some(node.clone()),
                        path: base.join(p),
                    }),
                    None => errors.push(err("images", format!("'{node}': expected a file path"))),
                }
            }
        }
        Some(Value::Array(a)) => {
            for v in a {
                match v.as_str().and_then(|s| s.split_once('=')) {
                    Some((node, p)) => images.push(ImageArg {
                        node: Some(node.to_string()),
                        path: base.join(p),
                    }),
                    None => errors.push(err("images", "expected \"NODE=PATH\" strings".into())),
                }
            }
        }
        Some(_) => errors.push(err(
            "images",
            "expected {\"NODE\": \"PATH\", ...} or [\"NODE=PATH\", ...]".into(),
        )),
    }
    let prompt = text("prompt", &mut errors);
    let negative = text("negative", &mut errors);
    let seed = match (o.get("seed"), o.get("random_seed")) {
        (Some(Value::Number(n)), _) => match n.as_u64() {
            Some(s) => Some(SeedChoice::Fixed(s)),
            None => {
                errors.push(err(
                    "seed",
                    "expected a whole number from 0 to 2^64-1".into(),
                ));
                None
            }
        },
        (Some(Value::Null) | None, Some(Value::Bool(true))) => Some(SeedChoice::Random),
        (Some(Value::Null) | None, Some(Value::Bool(false)) | None | Some(Value::Null)) => None,
        (Some(_), _) => {
            errors.push(err("seed", "expected a whole number".into()));
            None
        }
        (_, Some(_)) => {
            errors.push(err("random_seed", "expected true or false".into()));
            None
        }
    };
    let mut sets = Vec::new();
    match o.get("set") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let arg = format!("{k}={v}");
                match SetArg::parse(&arg) {
                    Ok(mut s) => {
                        s.value = v.clone();
                        sets.push(s);
                    }
                    Err(e) => errors.push(err("set", format!("'{k}': {e}"))),
                }
            }
        }
        Some(_) => errors.push(err("set", "expected {\"NODE.INPUT\": value, ...}".into())),
    }
    let out = match o.get("out") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let p = PathBuf::from(s);
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                errors.push(err(
                    "out",
                    "expected a relative folder inside -o (no '..', not absolute)".into(),
                ));
                None
            } else {
                Some(p)
            }
        }
        Some(_) => {
            errors.push(err("out", "expected a folder name".into()));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(JobLine {
        line,
        id,
        workflow,
        inject: InjectOptions {
            images,
            prompt,
            negative,
            seed,
            sets,
        },
        out,
    })
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_lines_with_every_field() {
        let (jobs, errs) = parse(
            r#"{"id": "fox-01", "workflow": "wf.json", "image": "in/fox.png", "prompt": "a fox", "seed": 7, "set": {"wan_i2v_1.length": 49}, "out": "fox-01"}

{"workflow": "wf.json", "images": {"load_image_1": "a.png"}, "random_seed": true}"#,
            Path::new("/base"),
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].id, "fox-01");
        assert_eq!(
            jobs[0].workflow.as_deref(),
            Some(Path::new("/base/wf.json"))
        );
        assert_eq!(jobs[0].inject.images[0].path, Path::new("/base/in/fox.png"));
        assert_eq!(jobs[0].inject.sets[0].value, serde_json::json!(49));
        assert_eq!(jobs[1].id, "3");
        assert!(matches!(jobs[1].inject.seed, Some(SeedChoice::Random)));
    }

    #[test]
    fn every_bad_line_is_reported_at_once() {
        let (_, errs) = parse(
            "{\"id\": \"a\", \"promt\": \"x\"}\nnot json\n[1]\n{\"id\": \"b\", \"seed\": -1, \"out\": \"../x\"}\n",
            Path::new("."),
        );
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 5, "{shown:#?}");
        assert!(
            shown[0]
                .contains("line 1 (job a), field 'promt': unknown field; did you mean 'prompt'?"),
            "{}",
            shown[0]
        );
        assert!(shown[1].starts_with("line 2: not valid JSON"));
        assert!(shown[2].contains("expected a JSON object"));
        assert!(shown.iter().any(|s| s.contains("field 'seed'")));
        assert!(shown.iter().any(|s| s.contains("field 'out'")));
    }

    #[test]
    fn csv_with_header_and_columns_for_sets_and_images() {
        let (jobs, errs) = parse(
            "id,workflow,prompt,seed,set.ksampler_1.steps,image.load_image_1\nj1,wf.json,\"a, quoted \"\"fox\"\"\",5,20,x.png\n",
            Path::new("/b"),
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(jobs[0].inject.prompt.as_deref(), Some("a, quoted \"fox\""));
        assert!(matches!(jobs[0].inject.seed, Some(SeedChoice::Fixed(5))));
        assert_eq!(jobs[0].inject.sets[0].value, serde_json::json!(20));
        assert_eq!(
            jobs[0].inject.images[0].node.as_deref(),
            Some("load_image_1")
        );
    }
}
