//! `comfyctl diff`: a structural diff of two workflows, after normalization.
//!
//! Both sides are normalized first ([`crate::normalize`]), so node IDs are structural names
//! (`ksampler_1`, `clip_text_encode_2`, ...) and two exports of the same graph with different IDs
//! or node order compare as identical. What is left to report is what changes what ComfyUI runs:
//! nodes added or removed, literal input values changed, and inputs fed from a different place.
//! Titles (`_meta`) are not compared (they are shown for added and removed nodes).
//!
//! The comparison ([`diff`]) is a pure function over two normalized node maps; `commands/diff.rs` loads,
//! normalizes and prints. Exit codes are for CI: 0 identical, 1 different, 2 bad input.

use crate::error::{Error, Result};
use crate::normalize::{self, NameTable};
use crate::workflow::{as_link, Document};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// The version of the `--json` object; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A node present on one side only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEntry {
    /// Normalized ID.
    pub node: String,
    pub class_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A literal input whose value differs. `old` / `new` is absent when the input is not there on
/// that side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueChange {
    pub node: String,
    pub class_type: String,
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Where an input gets its value from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Source {
    /// Output `slot` of node `node` (normalized ID).
    Link { node: String, slot: u64 },
    /// A literal value (the input was, or became, a widget value).
    Value { value: Value },
}

/// An input that is a link on at least one side and is not the same link on both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rewire {
    pub node: String,
    pub class_type: String,
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Source>,
}

/// Every difference, each list in a stable order: removed in the old file's normalized order,
/// added in the new one's, changes and rewirings by node (old order) then input (node order).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    pub added: Vec<NodeEntry>,
    pub removed: Vec<NodeEntry>,
    pub changed: Vec<ValueChange>,
    pub rewired: Vec<Rewire>,
}

impl Diff {
    pub fn is_identical(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.rewired.is_empty()
    }
}

fn class_of(node: &Value) -> &str {
    node.get("class_type").and_then(Value::as_str).unwrap_or("")
}

fn title_of(node: &Value) -> Option<String> {
    node.get("_meta")
        .and_then(|m| m.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn entry(id: &str, node: &Value) -> NodeEntry {
    NodeEntry {
        node: id.to_string(),
        class_type: class_of(node).to_string(),
        title: title_of(node),
    }
}

fn inputs_of(node: &Value) -> Option<&Map<String, Value>> {
    node.get("inputs").and_then(Value::as_object)
}

fn source(v: &Value) -> Source {
    match as_link(v) {
        Some((id, slot)) => Source::Link {
            node: id.to_key(),
            slot,
        },
        None => Source::Value { value: v.clone() },
    }
}

/// Compares two *normalized* node maps (see the module docs). A node whose class changed under
/// the same ID is reported as removed and added.
pub fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Diff {
    let mut d = Diff::default();
    let same_node = |id: &str, a: &Value| new.get(id).is_some_and(|b| class_of(a) == class_of(b));
    for (id, a) in old {
        if !same_node(id, a) {
            d.removed.push(entry(id, a));
        }
    }
    for (id, b) in new {
        if old.get(id).is_none_or(|a| class_of(a) != class_of(b)) {
            d.added.push(entry(id, b));
        }
    }
    let empty = Map::new();
    for (id, a) in old {
        if !same_node(id, a) {
            continue;
        }
        let b = &new[id];
        let (ia, ib) = (
            inputs_of(a).unwrap_or(&empty),
            inputs_of(b).unwrap_or(&empty),
        );
        let names = ia.keys().chain(ib.keys().filter(|k| !ia.contains_key(*k)));
        for name in names {
            let (va, vb) = (ia.get(name), ib.get(name));
            let is_link = |v: Option<&Value>| v.is_some_and(|v| as_link(v).is_some());
            if is_link(va) || is_link(vb) {
                let (sa, sb) = (va.map(source), vb.map(source));
                let same = match (&sa, &sb) {
                    (Some(Source::Link { .. }), Some(Source::Link { .. })) => sa == sb,
                    _ => false,
                };
                if !same {
                    d.rewired.push(Rewire {
                        node: id.clone(),
                        class_type: class_of(a).to_string(),
                        input: name.clone(),
                        old: sa,
                        new: sb,
                    });
                }
            } else if !match (va, vb) {
                (Some(x), Some(y)) => same_value(x, y),
                _ => false,
            } {
                d.changed.push(ValueChange {
                    node: id.clone(),
                    class_type: class_of(a).to_string(),
                    input: name.clone(),
                    old: va.cloned(),
                    new: vb.cloned(),
                });
            }
        }
    }
    d
}

/// JSON equality with numbers compared by value: `2` and `2.0`, `1e-3` and `0.001` are the same
/// input to ComfyUI (and ComfyUI itself re-writes numbers that way when it embeds a prompt), while
/// comfyctl keeps numbers as written (`arbitrary_precision`), so plain `==` would tell them apart.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                i == j
            } else if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
                i == j
            } else {
                matches!((x.as_f64(), y.as_f64()), (Some(i), Some(j)) if i == j)
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// One side's normalized map and where each normalized ID came from.
pub struct Side {
    pub file: String,
    pub nodes: Map<String, Value>,
    /// normalized ID → ID in the file.
    pub original: std::collections::HashMap<String, String>,
}

impl Side {
    /// Normalizes a loaded document with `table`; a structurally invalid one is an error (exit 2).
    pub fn from_document(doc: &Document, table: &NameTable) -> Result<Side> {
        let n = normalize::normalize(doc.nodes(), &doc.file, table).map_err(|d| {
            Error::InvalidWorkflow {
                file: doc.file.clone(),
                diagnostics: d,
            }
        })?;
        Ok(Side {
            file: doc.file.clone(),
            original: n.map.into_iter().map(|(o, n)| (n, o)).collect(),
            nodes: n.nodes,
        })
    }

    fn id<'s>(&'s self, normalized: &'s str) -> &'s str {
        self.original
            .get(normalized)
            .map_or(normalized, String::as_str)
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).expect("a Value always serializes")
}

fn show_source(s: Option<&Source>) -> String {
    match s {
        None => "(absent)".into(),
        Some(Source::Link { node, slot }) => format!("{node}[{slot}]"),
        Some(Source::Value { value }) => compact(value),
    }
}

fn show_value(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".into(), compact)
}

fn show_node(e: &NodeEntry, id: &str) -> String {
    let mut s = format!("{} ({}", e.node, e.class_type);
    if let Some(t) = &e.title {
        let _ = write!(s, " {}", compact(&Value::String(t.clone())));
    }
    let _ = write!(s, ", node {id})");
    s
}

/// Where a node common to both sides sits in each file, when the IDs differ from its name.
fn ids_note(old: &Side, new: &Side, node: &str) -> String {
    let (a, b) = (old.id(node), new.id(node));
    if a == b {
        format!("  (node {a})")
    } else {
        format!("  (node {a} → {b})")
    }
}

/// The human output: one line per change (removed, added, changed, rewired, in [`Diff`]'s
/// order), then a summary line. Original node IDs are in parentheses.
pub fn render(d: &Diff, old: &Side, new: &Side) -> String {
    let mut s = String::new();
    if d.is_identical() {
        let _ = writeln!(
            s,
            "{} and {}: identical ({} nodes after normalization)",
            old.file,
            new.file,
            old.nodes.len()
        );
        return s;
    }
    for e in &d.removed {
        let _ = writeln!(s, "removed  {}", show_node(e, old.id(&e.node)));
    }
    for e in &d.added {
        let _ = writeln!(s, "added    {}", show_node(e, new.id(&e.node)));
    }
    for c in &d.changed {
        let _ = writeln!(
            s,
            "changed  {}.{}: {} → {}{}",
            c.node,
            c.input,
            show_value(c.old.as_ref()),
            show_value(c.new.as_ref()),
            ids_note(old, new, &c.node)
        );
    }
    for r in &d.rewired {
        let _ = writeln!(
            s,
            "rewired  {}.{}: {} → {}{}",
            r.node,
            r.input,
            show_source(r.old.as_ref()),
            show_source(r.new.as_ref()),
            ids_note(old, new, &r.node)
        );
    }
    let _ = writeln!(
        s,
        "{} and {} differ: {} added, {} removed, {} changed, {} rewired",
        old.file,
        new.file,
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.rewired.len()
    );
    s
}

/// The `--json` object (documented in README.md, "comfyctl diff").
pub fn to_json(d: &Diff, old: &Side, new: &Side) -> Value {
    let side = |s: &Side| json!({"file": s.file, "nodes": s.nodes.len()});
    json!({
        "schema_version": SCHEMA_VERSION,
        "identical": d.is_identical(),
        "old": side(old),
        "new": side(new),
        "added": d.added,
        "removed": d.removed,
        "changed": d.changed,
        "rewired": d.rewired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&json!(2), &serde_json::from_str("2.0").unwrap()));
        assert!(same_value(
            &serde_json::from_str("1e-3").unwrap(),
            &serde_json::from_str("0.001").unwrap()
        ));
        assert!(!same_value(&json!(2), &json!(3)));
        assert!(!same_value(&json!(u64::MAX), &json!(u64::MAX - 1)));
        assert!(!same_value(&json!("2"), &json!(2)));
    }

    #[test]
    fn every_kind_of_change() {
        let a = map(json!({
            "a": {"class_type": "A", "inputs": {"x": 1, "y": "s"}},
            "b": {"class_type": "B", "inputs": {"in": ["a", 0], "w": 5}},
            "gone": {"class_type": "G", "inputs": {}, "_meta": {"title": "T"}},
        }));
        let b = map(json!({
            "a": {"class_type": "A", "inputs": {"x": 2, "y": "s", "z": true}},
            "b": {"class_type": "B", "inputs": {"in": ["a", 1], "w": ["a", 0]}},
            "new": {"class_type": "N", "inputs": {}},
        }));
        let d = diff(&a, &b);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].title.as_deref(), Some("T"));
        assert_eq!(d.added[0].node, "new");
        let changed: Vec<_> = d
            .changed
            .iter()
            .map(|c| (c.input.as_str(), c.old.clone(), c.new.clone()))
            .collect();
        assert_eq!(
            changed,
            [
                ("x", Some(json!(1)), Some(json!(2))),
                ("z", None, Some(json!(true)))
            ]
        );
        let rewired: Vec<_> = d.rewired.iter().map(|r| r.input.as_str()).collect();
        assert_eq!(rewired, ["in", "w"]);
        assert_eq!(d.rewired[1].old, Some(Source::Value { value: json!(5) }));
        assert!(diff(&a, &a).is_identical());
    }
}
