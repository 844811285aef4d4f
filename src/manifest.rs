//! Manifests: what a successful job was, written beside its outputs as
//! `comfyctl-<job id>.json` (README, "Manifests"), so that it can be checked, diffed and
//! replayed. [`build`] is pure (a [`Prepared`] job, its [`JobResult`] and what the target said
//! about itself); [`write`] writes atomically and never replaces an existing file.
//!
//! The structural hash (`workflow_sha256`) is the SHA-256 of the sent node map serialized
//! canonically: object keys sorted by their UTF-8 bytes at every level, no whitespace, strings
//! escaped as JSON does, numbers written as they were read. The node-schema fingerprint
//! (`server.node_schema_sha256`) is the same hash of `server.node_schema`.

use crate::error::{Error, Result};
use crate::job::Prepared;
use crate::result::JobResult;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bumped when a key is removed or changes meaning.
pub const MANIFEST_VERSION: u32 = 1;

/// Writes `v` as canonical JSON (sorted keys, no whitespace).
pub fn canonical(v: &Value) -> String {
    fn go(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    go(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    go(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    go(v, &mut s);
    s
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The structural hash of a value: SHA-256 of its canonical JSON.
pub fn structural_hash(v: &Value) -> String {
    sha256_hex(canonical(v).as_bytes())
}

/// SHA-256 of a file's content, read in 64 kB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The node map as sent: injections applied, images under the names the server gave them
/// (`facts.image_names`: upload name → server name; the upload name otherwise).
pub fn sent_workflow(job: &Prepared, facts: &Value) -> Map<String, Value> {
    let names = facts.get("image_names").and_then(Value::as_object);
    job.nodes_with(|img| {
        names
            .and_then(|n| n.get(&img.upload_name))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| img.upload_name.clone())
    })
}

/// Builds the manifest of a successful job. `facts` is what [`crate::engine::Target::facts`]
/// returned.
pub fn build(job: &Prepared, r: &JobResult, facts: &Value) -> Value {
    let workflow = Value::Object(sent_workflow(job, facts));
    let names = facts.get("image_names").and_then(Value::as_object);
    let images: Vec<Value> = job
        .plan
        .images
        .iter()
        .map(|img| {
            let path = std::fs::canonicalize(&img.path).unwrap_or_else(|_| img.path.clone());
            json!({
                "path": path,
                "given_as": img.path,
                "sha256": sha256_hex(&img.bytes),
                "bytes": img.bytes.len(),
                "node": img.node,
                "server_name": names
                    .and_then(|n| n.get(&img.upload_name))
                    .cloned()
                    .unwrap_or_else(|| Value::String(img.upload_name.clone())),
            })
        })
        .collect();
    let sets: Vec<Value> = job
        .inject
        .sets
        .iter()
        .map(|s| json!({"node": s.node, "input": s.input, "value": s.value}))
        .collect();
    let edits: Vec<Value> = job
        .plan
        .edits
        .iter()
        .map(|(n, i, v)| json!({"node": n, "input": i, "value": v}))
        .collect();
    let outputs: Vec<Value> = r
        .outputs
        .iter()
        .map(|o| {
            json!({
                "path": std::fs::canonicalize(&o.path).unwrap_or_else(|_| o.path.clone()),
                "bytes": o.bytes,
                "sha256": o.sha256.clone().or_else(|| sha256_file(&o.path).ok()),
                "format": o.format,
                "node": o.node,
                "server_name": o.server_name,
            })
        })
        .collect();
    let mut server = match facts {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove("image_names");
            m
        }
        _ => Map::new(),
    };
    if let Some(s) = server.get("node_schema").filter(|s| s.is_object()).cloned() {
        server.insert("node_schema_sha256".into(), structural_hash(&s).into());
    } else if server.contains_key("node_schema") {
        server.insert("node_schema_sha256".into(), Value::Null);
    }
    if r.target.kind == "runpod" {
        server.insert("endpoint_id".into(), json!(r.target.endpoint));
        server.insert("worker_id".into(), json!(r.worker_id));
    }
    json!({
        "manifest_version": MANIFEST_VERSION,
        "comfyctl_version": env!("CARGO_PKG_VERSION"),
        "created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "target": {
            "kind": r.target.kind,
            "url": crate::redacted::display_url(&r.target.url),
            "endpoint": r.target.endpoint,
        },
        "client_id": r.client_id,
        "job_id": r.job_id,
        "mode": r.mode,
        "source": job.doc.file,
        "normalized": job.normalized.is_some(),
        "workflow_sha256": structural_hash(&workflow),
        "workflow": workflow,
        "injected": {
            "images": images,
            "prompt": job.inject.prompt,
            "negative": job.inject.negative,
            "seed": job.plan.seed,
            "sets": sets,
            "edits": edits,
        },
        "server": server,
        "nodes": r.nodes,
        "all_cached": r.all_cached,
        "timings": r.timings,
        "outputs": outputs,
    })
}

/// `comfyctl-<job id>.json`, the ID reduced to characters safe in a file name.
pub fn file_name(job_id: &str) -> String {
    let safe: String = job_id
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    format!(
        "comfyctl-{}.json",
        if safe.is_empty() { "job" } else { safe }
    )
}

/// Writes the manifest into `dir` (created if missing) atomically, never over an existing file:
/// when `comfyctl-<id>.json` exists, `comfyctl-<id>-1.json`, `-2`, ... Returns the path.
pub fn write(dir: &Path, manifest: &Value) -> Result<PathBuf> {
    let id = manifest
        .get("job_id")
        .and_then(Value::as_str)
        .unwrap_or("job");
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let mut text = serde_json::to_string_pretty(manifest).expect("serializable");
    text.push('\n');
    let name = file_name(id);
    let stem = name.trim_end_matches(".json").to_string();
    for i in 0..1000 {
        let p = if i == 0 {
            dir.join(&name)
        } else {
            dir.join(format!("{stem}-{i}.json"))
        };
        if crate::outputs::write_atomic_new(&p, text.as_bytes())? {
            return Ok(p);
        }
    }
    Err(Error::Usage(format!(
        "{}: too many manifests named {stem}-N.json",
        dir.display()
    )))
}

/// Reads a manifest file.
pub fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: not valid JSON: {e}", path.display())))?;
    if !is_manifest(&v) {
        return Err(Error::Usage(format!(
            "{}: not a comfyctl manifest (no manifest_version and workflow)",
            path.display()
        )));
    }
    match v.get("manifest_version").and_then(Value::as_u64) {
        Some(n) if n <= MANIFEST_VERSION as u64 => Ok(v),
        _ => Err(Error::Usage(format!(
            "{}: manifest_version {} is newer than this comfyctl understands ({MANIFEST_VERSION})",
            path.display(),
            v["manifest_version"]
        ))),
    }
}

/// Whether a JSON document is a manifest.
pub fn is_manifest(v: &Value) -> bool {
    v.get("manifest_version").is_some() && v.get("workflow").is_some_and(Value::is_object)
}

/// The input summary of one class's schema entry for drift: name → (type, allowed values).
fn input_specs(entry: &Value) -> Vec<(String, String, Option<Vec<String>>)> {
    let mut v = Vec::new();
    for section in ["required", "optional"] {
        if let Some(m) = entry.get(section).and_then(Value::as_object) {
            for (name, spec) in m {
                let first = spec.get(0).unwrap_or(spec);
                let (ty, allowed) = match first {
                    Value::String(s) => {
                        match spec.pointer("/1/options").and_then(Value::as_array) {
                            Some(opts) if s == "COMBO" => ("COMBO".into(), Some(strings(opts))),
                            _ => (s.clone(), None),
                        }
                    }
                    Value::Array(a) => ("COMBO".into(), Some(strings(a))),
                    other => (other.to_string(), None),
                };
                v.push((name.clone(), ty, allowed));
            }
        }
    }
    v
}

fn strings(a: &[Value]) -> Vec<String> {
    a.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| x.to_string())
        })
        .collect()
}

fn sample(v: &[&String]) -> String {
    let shown: Vec<String> = v.iter().take(5).map(|s| format!("'{s}'")).collect();
    if v.len() > 5 {
        format!("{} and {} more", shown.join(", "), v.len() - 5)
    } else {
        shown.join(", ")
    }
}

/// What changed on the server since the manifest was written, from the manifest's `server` and
/// the target's facts now: version, device, classes added/removed among those used, inputs of
/// the used classes (names, types, allowed values). Empty when nothing changed (or nothing is
/// known to compare).
pub fn drift(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["comfyui_version", "device"] {
        if let (Some(a), Some(b)) = (old.get(key), new.get(key)) {
            if a != b && !a.is_null() && !b.is_null() {
                out.push(format!("{key}: {a} then, {b} now"));
            }
        }
    }
    let (Some(a), Some(b)) = (
        old.get("node_schema").and_then(Value::as_object),
        new.get("node_schema").and_then(Value::as_object),
    ) else {
        return out;
    };
    if structural_hash(&Value::Object(a.clone())) == structural_hash(&Value::Object(b.clone())) {
        return out;
    }
    for (class, was) in a {
        // Absent (the server did not answer for it) is unknown, not removed.
        let Some(now) = b.get(class) else { continue };
        match (was.is_null(), now.is_null()) {
            (false, true) => out.push(format!("class {class}: no longer on the server")),
            (true, false) => out.push(format!("class {class}: now on the server (missing then)")),
            (true, true) => {}
            (false, false) => {
                let was = input_specs(was);
                let now = input_specs(now);
                for (name, ty, allowed) in &was {
                    match now.iter().find(|(n, _, _)| n == name) {
                        None => out.push(format!("{class}.{name}: input removed")),
                        Some((_, ty2, allowed2)) => {
                            if ty != ty2 {
                                out.push(format!("{class}.{name}: type {ty} then, {ty2} now"));
                            }
                            if let (Some(x), Some(y)) = (allowed, allowed2) {
                                let gone: Vec<&String> =
                                    x.iter().filter(|v| !y.contains(v)).collect();
                                let added: Vec<&String> =
                                    y.iter().filter(|v| !x.contains(v)).collect();
                                if !gone.is_empty() {
                                    out.push(format!(
                                        "{class}.{name}: values no longer allowed: {}",
                                        sample(&gone)
                                    ));
                                }
                                if !added.is_empty() {
                                    out.push(format!(
                                        "{class}.{name}: new allowed values: {}",
                                        sample(&added)
                                    ));
                                }
                            }
                        }
                    }
                }
                for (name, ty, _) in &now {
                    if !was.iter().any(|(n, _, _)| n == name) {
                        out.push(format!("{class}.{name}: new input ({ty})"));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b": {"y": 1, "x": [2, {"q": 1, "p": 0}]}, "a": "é"}"#)
                .unwrap();
        assert_eq!(
            canonical(&a),
            r#"{"a":"é","b":{"x":[2,{"p":0,"q":1}],"y":1}}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a": "é", "b": {"x": [2, {"p": 0, "q": 1}], "y": 1}}"#)
                .unwrap();
        assert_eq!(structural_hash(&a), structural_hash(&b));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("ab-12_c"), "comfyctl-ab-12_c.json");
        assert_eq!(file_name("../x/y"), "comfyctl-_x_y.json");
        assert_eq!(file_name(""), "comfyctl-job.json");
    }

    #[test]
    fn write_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let m = json!({"job_id": "j1", "manifest_version": 1, "workflow": {}});
        let p1 = write(d.path(), &m).unwrap();
        std::fs::write(&p1, "mine").unwrap();
        let p2 = write(d.path(), &m).unwrap();
        assert_eq!(p1.file_name().unwrap(), "comfyctl-j1.json");
        assert_eq!(p2.file_name().unwrap(), "comfyctl-j1-1.json");
        assert_eq!(std::fs::read_to_string(&p1).unwrap(), "mine");
    }

    #[test]
    fn drift_names_classes_and_inputs() {
        let old = json!({"comfyui_version": "0.3.64", "node_schema": {
            "KSampler": {"required": {"steps": ["INT", {}], "sampler_name": [["euler", "dpm"], {}]}},
            "Gone": {"required": {}},
            "Later": null}});
        let new = json!({"comfyui_version": "0.3.65", "node_schema": {
            "KSampler": {"required": {"steps": ["FLOAT", {}], "sampler_name": [["euler", "lcm"], {}], "cfg": ["FLOAT", {}]}},
            "Gone": null,
            "Later": {"required": {}}}});
        let unknown = json!({"comfyui_version": "0.3.64", "node_schema": {"Gone": null}});
        assert_eq!(
            drift(&old, &unknown),
            ["class Gone: no longer on the server"]
        );
        let d = drift(&old, &new).join("\n");
        for want in [
            "comfyui_version: \"0.3.64\" then, \"0.3.65\" now",
            "class Gone: no longer on the server",
            "class Later: now on the server",
            "KSampler.steps: type INT then, FLOAT now",
            "KSampler.sampler_name: values no longer allowed: 'dpm'",
            "KSampler.sampler_name: new allowed values: 'lcm'",
            "KSampler.cfg: new input (FLOAT)",
        ] {
            assert!(d.contains(want), "{want} not in:\n{d}");
        }
        assert!(drift(&old, &old).is_empty());
    }
}
