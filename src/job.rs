//! A job as comfyctl prepares it before any network call: the workflow loaded, normalized
//! (unless `--no-normalize`), every injection resolved and every input image read and checked.
//! Target-independent: the engine hands a [`Prepared`] to whichever target runs it.

use crate::error::{Error, Result};
use crate::inject::{self, Plan};
use crate::normalize::{self, NameTable, Normalized};
use crate::report::Reporter;
use crate::settings::{SchemaFrom, SendSettings};
use crate::workflow::Document;
use serde_json::{Map, Value};

/// A workflow ready to send: normalized (unless `--no-normalize`), injections resolved, images read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub doc: Document,
    /// The node map that will be sent, before image names are filled in.
    pub nodes: Map<String, Value>,
    pub normalized: Option<Normalized>,
    pub plan: Plan,
    /// The injections as asked for (`--prompt`, `--negative`, `--seed`, `--set`), for the manifest.
    pub inject: crate::inject::InjectOptions,
}

impl Prepared {
    /// The node map with every injection applied; `image_name` gives each image's server-side name.
    pub fn nodes_with(
        &self,
        image_name: impl Fn(&inject::PreparedImage) -> String,
    ) -> Map<String, Value> {
        let mut nodes = self.nodes.clone();
        inject::apply(&mut nodes, &self.plan, image_name);
        nodes
    }

    /// The node's ID as the user wrote it, if normalization renamed it (for messages).
    pub fn original_id(&self, id: &str) -> Option<&str> {
        self.normalized
            .as_ref()?
            .map
            .iter()
            .find(|(_, n)| n == id)
            .map(|(o, _)| o.as_str())
    }

    /// `_meta.title` of a node in the sent workflow.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.nodes.get(id)?.get("_meta")?.get("title")?.as_str()
    }

    /// `class_type` of a node in the sent workflow.
    pub fn class_type(&self, id: &str) -> Option<&str> {
        self.nodes.get(id)?.get("class_type")?.as_str()
    }

    /// `ksampler_1 [was 3] "KSampler" (KSampler)`, or the bare ID: how messages name a node.
    pub fn node_label(&self, id: &str) -> String {
        let mut s = crate::redacted::escape_controls(id);
        if let Some(orig) = self.original_id(id).filter(|o| *o != id) {
            s.push_str(&format!(" [was {orig}]"));
        }
        match (self.title(id), self.class_type(id)) {
            (Some(t), Some(c)) if t != c => s.push_str(&format!(" \"{t}\" ({c})")),
            (_, Some(c)) => s.push_str(&format!(" ({c})")),
            _ => {}
        }
        s
    }
}

/// Loads the name table: built-in, extended by `--names FILE`.
pub fn load_names(path: Option<&std::path::Path>) -> Result<NameTable> {
    let mut t = NameTable::builtin();
    if let Some(p) = path {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("--names {}: cannot read: {e}", p.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("--names {}: not valid JSON: {e}", p.display())))?;
        t.extend_from_json(&v)
            .map_err(|e| Error::Usage(format!("--names {}: {e}", p.display())))?;
    }
    Ok(t)
}

/// Everything before the network: load, normalize, resolve and read injections.
pub fn prepare(s: &SendSettings, reporter: &Reporter) -> Result<Prepared> {
    let table = load_names(s.names.as_deref())?;
    let schema = match &s.object_info {
        Some(p) => SchemaFrom::File(p.clone()),
        None => SchemaFrom::None,
    };
    let doc = crate::load::load_document(&s.workflow, &schema, reporter)?;
    prepare_document(doc, &table, s.no_normalize, &s.inject, reporter)
}

/// [`prepare`] for a document already loaded (batch loads each workflow once).
pub fn prepare_document(
    doc: Document,
    table: &NameTable,
    no_normalize: bool,
    opts: &crate::inject::InjectOptions,
    reporter: &Reporter,
) -> Result<Prepared> {
    let (nodes, normalized) = if no_normalize {
        // Still refuse a broken graph before any network call.
        crate::workflow::Graph::build(doc.nodes(), &doc.file).map_err(|d| {
            Error::InvalidWorkflow {
                file: doc.file.clone(),
                diagnostics: d,
            }
        })?;
        (doc.nodes().clone(), None)
    } else {
        let n = normalize::normalize(doc.nodes(), &doc.file, table).map_err(|d| {
            Error::InvalidWorkflow {
                file: doc.file.clone(),
                diagnostics: d,
            }
        })?;
        (n.nodes.clone(), Some(n))
    };
    let plan = inject::plan(&nodes, &doc.file, normalized.as_ref(), opts)?;
    for w in &plan.warnings {
        reporter.warn(w);
    }
    if let Some(seed) = plan.seed {
        reporter.debug(1, format!("seed: {seed}"));
    }
    Ok(Prepared {
        doc,
        nodes,
        normalized,
        plan,
        inject: opts.clone(),
    })
}
