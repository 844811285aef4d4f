//! Planning a batch: every job prepared before anything is sent (each workflow loaded and
//! normalized once), and the order that keeps models loaded.
//!
//! ComfyUI's default cache keeps only the *last* prompt's results, per node; a node whose class
//! and inputs equal the last prompt's is not run again. So what keeps a model loaded is which
//! job runs after which on which server. A job's **model key** is the hash of the part of its
//! workflow its own inputs do not reach: every node that is not downstream of an injected image,
//! prompt, seed or `--set` (after normalization, so it is structural). Jobs with the same key
//! share every loader; run back to back on one server, only the first loads the models.

use super::jobs::{JobLine, LineError};
use crate::job::Prepared;
use crate::normalize::{NameTable, Normalized};
use crate::report::Reporter;
use crate::workflow::{as_link, Document};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// A workflow loaded and normalized once for every job that uses it (or why it could not be).
type Loaded = std::result::Result<(Document, Map<String, Value>, Normalized), String>;

/// A job ready to run.
#[derive(Debug)]
pub struct Planned {
    pub line: JobLine,
    pub workflow: PathBuf,
    pub prepared: Prepared,
    /// The model key (first 12 hex digits).
    pub key: String,
    /// Loader nodes in the shared subgraph (`Checkpoint…Loader`, `…ModelLoader…`), for reports.
    pub loaders: usize,
}

/// Prepares every line; returns the jobs and every problem found (the batch runs only with none).
pub fn prepare_all(
    lines: Vec<JobLine>,
    default_workflow: Option<&Path>,
    table: &NameTable,
    object_info: Option<&Path>,
    reporter: &Reporter,
) -> (Vec<Planned>, Vec<LineError>) {
    let mut docs: HashMap<PathBuf, Loaded> = HashMap::new();
    let schema = match object_info {
        Some(p) => crate::settings::SchemaFrom::File(p.to_path_buf()),
        None => crate::settings::SchemaFrom::None,
    };
    let quiet = Reporter::with_mode(crate::report::Mode::Quiet, 0);
    let mut jobs = Vec::new();
    let mut errors = Vec::new();
    let mut seen_ids = BTreeMap::new();
    for line in lines {
        let err = |field: Option<&str>, message: String| LineError {
            line: line.line,
            id: Some(line.id.clone()),
            field: field.map(str::to_string),
            message,
        };
        if let Some(prev) = seen_ids.insert(line.id.clone(), line.line) {
            errors.push(err(
                Some("id"),
                format!(
                    "the same ID as line {prev}; every job needs its own ID (it keys the journal)"
                ),
            ));
            continue;
        }
        let Some(wf) = line
            .workflow
            .clone()
            .or_else(|| default_workflow.map(Path::to_path_buf))
        else {
            errors.push(err(
                Some("workflow"),
                "no workflow: give the field, or --workflow FILE for every line".into(),
            ));
            continue;
        };
        let loaded = docs.entry(wf.clone()).or_insert_with(|| {
            let doc =
                crate::load::load_document(&wf, &schema, &quiet).map_err(|e| e.to_string())?;
            let n = crate::normalize::normalize(doc.nodes(), &doc.file, table).map_err(|d| {
                crate::error::Error::InvalidWorkflow {
                    file: doc.file.clone(),
                    diagnostics: d,
                }
                .to_string()
            })?;
            let nodes = n.nodes.clone();
            Ok((doc, nodes, n))
        });
        let (doc, nodes, normalized) = match loaded {
            Ok(x) => x,
            Err(e) => {
                errors.push(err(Some("workflow"), e.clone()));
                continue;
            }
        };
        let plan = match crate::inject::plan(nodes, &doc.file, Some(normalized), &line.inject) {
            Ok(p) => p,
            Err(e) => {
                errors.push(err(None, e.to_string()));
                continue;
            }
        };
        for w in &plan.warnings {
            reporter.warn(format!("line {} (job {}): {w}", line.line, line.id));
        }
        let prepared = Prepared {
            doc: doc.clone(),
            nodes: nodes.clone(),
            normalized: Some(normalized.clone()),
            plan,
            inject: line.inject.clone(),
        };
        let (key, loaders) = model_key(&prepared);
        jobs.push(Planned {
            line,
            workflow: wf,
            prepared,
            key,
            loaders,
        });
    }
    (jobs, errors)
}

/// The model key of a job and the number of loader nodes in its shared subgraph.
pub fn model_key(p: &Prepared) -> (String, usize) {
    let nodes = p.nodes_with(|img| img.upload_name.clone());
    let mut touched: BTreeSet<String> = p.plan.edits.iter().map(|(n, _, _)| n.clone()).collect();
    touched.extend(p.plan.images.iter().map(|i| i.node.clone()));
    // Downstream closure: consumers of touched nodes are touched.
    let mut consumers: HashMap<String, Vec<&str>> = HashMap::new();
    for (id, node) in &nodes {
        if let Some(inputs) = node.get("inputs").and_then(Value::as_object) {
            for v in inputs.values() {
                if let Some((src, _)) = as_link(v) {
                    consumers.entry(src.to_key()).or_default().push(id.as_str());
                }
            }
        }
    }
    let mut queue: VecDeque<String> = touched.iter().cloned().collect();
    while let Some(n) = queue.pop_front() {
        for c in consumers.get(&n).into_iter().flatten() {
            if touched.insert(c.to_string()) {
                queue.push_back(c.to_string());
            }
        }
    }
    let shared: BTreeMap<&String, &Value> = nodes
        .iter()
        .filter(|(id, _)| !touched.contains(*id))
        .collect();
    let loaders = shared
        .values()
        .filter(|n| {
            n.get("class_type")
                .and_then(Value::as_str)
                .is_some_and(is_loader)
        })
        .count();
    let text = serde_json::to_string(&shared).expect("serializable");
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    (hex, loaders)
}

/// A node class that loads a model from disk.
pub fn is_loader(class: &str) -> bool {
    class.contains("Loader") || class.contains("ModelLoad")
}

/// The run order: jobs grouped by model key (groups in order of first appearance, jobs in file
/// order within a group), and, for several servers, whole groups assigned to the server with the
/// fewest jobs so far (largest groups first).
pub fn schedule(jobs: &[&Planned], servers: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| *k == j.key) {
            Some((_, v)) => v.push(i),
            None => groups.push((j.key.clone(), vec![i])),
        }
    }
    let servers = servers.max(1);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); servers];
    let mut by_size: Vec<usize> = (0..groups.len()).collect();
    by_size.sort_by_key(|&g| std::cmp::Reverse(groups[g].1.len()));
    let mut owner = vec![0usize; groups.len()];
    for g in by_size {
        let s = (0..servers).min_by_key(|&s| out[s].len()).unwrap_or(0);
        owner[g] = s;
        out[s].extend(groups[g].1.iter().copied());
    }
    // Keep first-appearance order of groups within each server.
    for list in out.iter_mut() {
        let pos: HashMap<usize, usize> = groups
            .iter()
            .enumerate()
            .flat_map(|(gi, (_, v))| v.iter().map(move |&j| (j, gi)))
            .collect();
        list.sort_by_key(|j| (pos[j], *j));
    }
    out
}

/// How many times models are loaded when jobs run in `order` on one server: one load per change
/// of model key (the default cache keeps only the last prompt).
pub fn loads(keys: impl Iterator<Item = String>) -> usize {
    let mut last = None;
    let mut n = 0;
    for k in keys {
        if last.as_ref() != Some(&k) {
            n += 1;
        }
        last = Some(k);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_count_key_changes() {
        let s = |v: &[&str]| loads(v.iter().map(|x| x.to_string()));
        assert_eq!(s(&["a", "b", "a", "b"]), 4);
        assert_eq!(s(&["a", "a", "b", "b"]), 2);
        assert_eq!(s(&[]), 0);
    }
}
