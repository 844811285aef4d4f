//! Reading what ComfyUI says about a prompt: `/prompt` validation errors, `/history` entries
//! (status, cached nodes, output files) and `/queue` positions. Pure functions over JSON, so they
//! are tested against the real captures' shapes without a server.

use crate::diagnostic::Diagnostic;
use crate::job::Prepared;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One output file the server lists for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub node: String,
    pub filename: String,
    pub subfolder: String,
    pub kind: String,
}

/// Every file entry in a history item's `outputs`: every key whose value is a list of objects
/// with a `filename` (`images` — which also carries mp4/webm from core SaveVideo —, `gifs` from
/// VideoHelperSuite, `audio`, …). `type: temp` previews are skipped unless `include_temp`.
/// Duplicates (the same file listed twice) are listed once.
pub fn output_files(entry: &Value, include_temp: bool) -> Vec<OutputFile> {
    let mut out: Vec<OutputFile> = Vec::new();
    let Some(outputs) = entry.get("outputs").and_then(Value::as_object) else {
        return out;
    };
    for (node, ui) in outputs {
        let Some(ui) = ui.as_object() else { continue };
        for list in ui.values() {
            let Some(items) = list.as_array() else {
                continue;
            };
            for item in items {
                let Some(filename) = item.get("filename").and_then(Value::as_str) else {
                    continue;
                };
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("output")
                    .to_string();
                if kind == "temp" && !include_temp {
                    continue;
                }
                let f = OutputFile {
                    node: node.clone(),
                    filename: filename.to_string(),
                    subfolder: item
                        .get("subfolder")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    kind,
                };
                if !out.iter().any(|o| {
                    o.filename == f.filename && o.subfolder == f.subfolder && o.kind == f.kind
                }) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// How many `type: temp` entries were skipped (to mention them).
pub fn temp_count(entry: &Value) -> usize {
    output_files(entry, true)
        .iter()
        .filter(|f| f.kind == "temp")
        .count()
}

/// The messages of a history item (`status.messages`: `[[type, data], …]`).
pub fn messages(entry: &Value) -> Vec<(&str, &Value)> {
    entry
        .pointer("/status/messages")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| Some((m.get(0)?.as_str()?, m.get(1)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Nodes served from the cache, per the history's `execution_cached` message.
pub fn cached_nodes(entry: &Value) -> BTreeSet<String> {
    messages(entry)
        .into_iter()
        .filter(|(t, _)| *t == "execution_cached")
        .flat_map(|(_, d)| ids(d.get("nodes")))
        .collect()
}

/// String IDs from a JSON list.
pub fn ids(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The outcome recorded in a history item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    Error(Value),
    Interrupted(Value),
    /// `status_str` says error but no message says why.
    Unknown(String),
}

pub fn outcome(entry: &Value) -> Outcome {
    let status = entry
        .pointer("/status/status_str")
        .and_then(Value::as_str)
        .unwrap_or("success");
    if status == "success" {
        return Outcome::Success;
    }
    for (t, d) in messages(entry).into_iter().rev() {
        match t {
            "execution_error" => return Outcome::Error(d.clone()),
            "execution_interrupted" => return Outcome::Interrupted(d.clone()),
            _ => {}
        }
    }
    Outcome::Unknown(status.to_string())
}

/// The output nodes the server decided to run (`prompt[4]` of a history or queue item).
pub fn outputs_to_execute(entry: &Value) -> BTreeSet<String> {
    ids(entry.get("prompt").and_then(|p| p.get(4)))
}

/// Every node the outputs depend on (themselves included): what a run executes or takes
/// from the cache.
pub fn needed_nodes(nodes: &Map<String, Value>, roots: &BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.iter().cloned().collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(inputs) = nodes
            .get(&id)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
        {
            for v in inputs.values() {
                if let Some([Value::String(src), Value::Number(_)]) =
                    v.as_array().map(Vec::as_slice)
                {
                    if nodes.contains_key(src) {
                        stack.push(src.clone());
                    }
                }
            }
        }
    }
    seen
}

/// Where a prompt is on the server's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    Running,
    /// 1-based position among everything ahead of it, running prompts included.
    Pending(usize),
    Absent,
}

/// Finds `prompt_id` in a `GET /queue` answer. Pending items run lowest `number` first.
pub fn queue_state(queue: &Value, prompt_id: &str) -> QueueState {
    let list = |k: &str| -> Vec<Value> {
        queue
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let running = list("queue_running");
    if running
        .iter()
        .any(|i| i.get(1).and_then(Value::as_str) == Some(prompt_id))
    {
        return QueueState::Running;
    }
    let pending = list("queue_pending");
    let num = |i: &Value| i.get(0).and_then(Value::as_f64).unwrap_or(0.0);
    match pending
        .iter()
        .find(|i| i.get(1).and_then(Value::as_str) == Some(prompt_id))
    {
        Some(me) => {
            let ahead = pending.iter().filter(|i| num(i) < num(me)).count();
            QueueState::Pending(running.len() + ahead + 1)
        }
        None => QueueState::Absent,
    }
}

/// `node_errors` from `/prompt` as one diagnostic per node and input, with the node's title and
/// class from the workflow that was sent and its ID as written in the file when normalization
/// renamed it.
pub fn node_error_diagnostics(
    node_errors: &Value,
    prepared: &Prepared,
    warning: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(map) = node_errors.as_object() else {
        return out;
    };
    for (id, ne) in map {
        let class = ne
            .get("class_type")
            .and_then(Value::as_str)
            .or_else(|| prepared.class_type(id))
            .unwrap_or("?")
            .to_string();
        let errors = ne
            .get("errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in errors {
            let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("rejected");
            let details = e.get("details").and_then(Value::as_str).unwrap_or("");
            let input = e
                .pointer("/extra_info/input_name")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut text = if details.is_empty() || details == input.as_deref().unwrap_or("") {
                message.to_string()
            } else {
                format!("{message}: {details}")
            };
            if let Some(orig) = prepared.original_id(id).filter(|o| *o != id) {
                text.push_str(&format!(" (node {orig} in {})", prepared.doc.file));
            }
            let code = error_code(kind);
            let mut d = if warning {
                Diagnostic::warning(code, text)
            } else {
                Diagnostic::error(code, text)
            };
            d = d
                .file(prepared.doc.file.clone())
                .node(id.clone())
                .title(prepared.title(id))
                .class(class.clone());
            if let Some(i) = &input {
                d = d.input(i.clone());
            }
            d = d.fix(fix_for(kind, &class, id, input.as_deref()));
            out.push(d);
        }
    }
    out
}

fn error_code(kind: &str) -> &'static str {
    match kind {
        "required_input_missing" => "required_input_missing",
        "bad_linked_input" => "bad_linked_input",
        "return_type_mismatch" => "return_type_mismatch",
        "invalid_input_type" => "invalid_input_type",
        "value_smaller_than_min" => "value_smaller_than_min",
        "value_bigger_than_max" => "value_bigger_than_max",
        "value_not_in_list" => "value_not_in_list",
        "custom_validation_failed" => "custom_validation_failed",
        "exception_during_inner_validation" => "exception_during_inner_validation",
        "exception_during_validation" => "exception_during_validation",
        "dependency_cycle" => "dependency_cycle",
        _ => "server_rejected",
    }
}

fn fix_for(kind: &str, class: &str, id: &str, input: Option<&str>) -> String {
    let input = input.unwrap_or("INPUT");
    match kind {
        "required_input_missing" => {
            format!("add the input, e.g. --set {id}.{input}=VALUE, or fix the workflow")
        }
        "value_not_in_list" => format!(
            "pick a value the server has (comfyctl verify --server URL lists them), or --set {id}.{input}=VALUE"
        ),
        "value_smaller_than_min" | "value_bigger_than_max" | "invalid_input_type" => {
            format!("--set {id}.{input}=VALUE with a value in range")
        }
        "custom_validation_failed" if class == "LoadImage" => {
            format!("the image is not on the server; pass it with --image {id}=PATH")
        }
        "bad_linked_input" | "return_type_mismatch" | "exception_during_inner_validation" => {
            "check the link into this input (run comfyctl verify)".into()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_every_file_list_and_skips_temp() {
        let entry = json!({"outputs": {
            "9": {"images": [{"filename": "a.webp", "subfolder": "", "type": "output"}], "animated": [true]},
            "10": {"gifs": [{"filename": "v.mp4", "subfolder": "s", "type": "output", "format": "video/h264-mp4"}]},
            "11": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
            "12": {"text": ["hello"]},
            "13": {"audio": [{"filename": "a.flac", "subfolder": "", "type": "output"}]}
        }});
        let f = output_files(&entry, false);
        let names: Vec<_> = f.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["a.webp", "v.mp4", "a.flac"]);
        assert_eq!(f[1].subfolder, "s");
        assert_eq!(output_files(&entry, true).len(), 4);
        assert_eq!(temp_count(&entry), 1);
    }

    #[test]
    fn queue_positions() {
        let q = json!({"queue_running": [[5, "r", {}, {}, []]],
                       "queue_pending": [[8, "b", {}, {}, []], [7, "a", {}, {}, []]]});
        assert_eq!(queue_state(&q, "r"), QueueState::Running);
        assert_eq!(queue_state(&q, "a"), QueueState::Pending(2));
        assert_eq!(queue_state(&q, "b"), QueueState::Pending(3));
        assert_eq!(queue_state(&q, "x"), QueueState::Absent);
    }

    #[test]
    fn outcome_and_cache_from_history() {
        let e = json!({"prompt": [1, "p", {}, {}, ["3"]],
            "status": {"status_str": "error", "completed": false, "messages": [
            ["execution_start", {"prompt_id": "p"}],
            ["execution_cached", {"nodes": ["1", "2"], "prompt_id": "p"}],
            ["execution_error", {"prompt_id": "p", "node_id": "3"}]]}});
        assert!(matches!(outcome(&e), Outcome::Error(d) if d["node_id"] == "3"));
        assert_eq!(cached_nodes(&e).len(), 2);
        assert_eq!(outputs_to_execute(&e), BTreeSet::from(["3".to_string()]));
        let nodes = json!({"1": {"inputs": {}}, "2": {"inputs": {"x": ["1", 0]}},
                           "3": {"inputs": {"y": ["2", 0]}}, "4": {"inputs": {}}});
        let need = needed_nodes(nodes.as_object().unwrap(), &outputs_to_execute(&e));
        assert_eq!(need.len(), 3);
    }
}
