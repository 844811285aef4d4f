//! `comfyctl verify`: structural checks of API-format workflows, a normalization consistency
//! check, and the injection-point summary. Schema-aware checks (unknown classes, enum values, ...)
//! are added by [`crate::schema`] when a schema is available.

use crate::diagnostic::{Diagnostic, Severity};
use crate::inject::{self, InjectionPoints};
use crate::normalize::{self, NameTable};
use crate::workflow::{Document, Graph};
use serde::Serialize;
use serde_json::{Map, Value};

/// Output node classes comfyctl knows without a schema.
pub const KNOWN_OUTPUT_NODES: &[&str] = &[
    "SaveImage",
    "PreviewImage",
    "SaveAnimatedWEBP",
    "SaveAnimatedPNG",
    "SaveVideo",
    "SaveWEBM",
    "VHS_VideoCombine",
    "Image Save",
    "SaveAudio",
    "SaveAudioMP3",
    "SaveAudioOpus",
    "PreviewAudio",
    "SaveLatent",
    "SaveGLB",
    "PreviewAny",
    "SaveImageWebsocket",
    "SaveImageExtended",
    "easy imageSave",
];

/// The result of verifying one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<InjectionPoints>,
    /// Original ID → normalized ID, when the graph is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized_ids: Option<Map<String, Value>>,
}

impl FileReport {
    /// A file that could not even be loaded.
    pub fn failed(d: Diagnostic) -> Self {
        FileReport {
            file: d.file.clone().unwrap_or_default(),
            valid: false,
            errors: 1,
            warnings: 0,
            nodes: None,
            diagnostics: vec![d],
            injection: None,
            normalized_ids: None,
        }
    }

    /// Recomputes the counts and validity after diagnostics were added.
    pub fn recount(self, strict: bool) -> Self {
        self.finish(strict)
    }

    fn finish(mut self, strict: bool) -> Self {
        self.errors = crate::diagnostic::error_count(&self.diagnostics);
        self.warnings = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        self.valid = self.errors == 0 && !(strict && self.warnings > 0);
        self
    }
}

/// Verifies a loaded document's structure (no schema). `strict` only affects `valid`.
pub fn verify_document(doc: &Document, table: &NameTable, strict: bool) -> FileReport {
    let file = doc.file.clone();
    let nodes = doc.nodes();
    let mut report = FileReport {
        file: file.clone(),
        valid: false,
        errors: 0,
        warnings: 0,
        nodes: Some(nodes.len()),
        diagnostics: Vec::new(),
        injection: None,
        normalized_ids: None,
    };
    let graph = match Graph::build(nodes, &file) {
        Ok(g) => g,
        Err(d) => {
            report.diagnostics = d;
            return report.finish(strict);
        }
    };
    for (i, (id, _)) in nodes.iter().enumerate() {
        for (name, v) in nodes[id]["inputs"].as_object().into_iter().flatten() {
            if let Some(a) = v.as_array() {
                if a.len() == 2 && a[0].is_number() && crate::workflow::as_link(v).is_some() {
                    report.diagnostics.push(
                        Diagnostic::warning(
                            "integer_link_id",
                            format!(
                                "links to node {} by an integer ID; ComfyUI expects a string",
                                a[0]
                            ),
                        )
                        .file(&file)
                        .node(id)
                        .title(graph.titles[i])
                        .class(graph.class[i])
                        .input(name)
                        .fix("write the ID as a string, or run 'comfyctl normalize', which does"),
                    );
                }
            }
        }
    }
    output_checks(&graph, &file, &mut report.diagnostics);
    consistency_checks(nodes, &file, table, &mut report);
    let pts = inject::analyze(&graph);
    if !pts.ambiguous.is_empty() {
        report.diagnostics.push(
            Diagnostic::warning(
                "ambiguous_prompt",
                format!(
                    "node(s) {} feed both a positive and a negative input; --prompt/--negative cannot set them",
                    pts.ambiguous.join(", ")
                ),
            )
            .file(&file)
            .fix("use --set NODE.text=... for these nodes"),
        );
    }
    report.injection = Some(pts);
    report.finish(strict)
}

/// Output-node checks: at least one known output node; nodes whose outputs go nowhere.
fn output_checks(g: &Graph, file: &str, diags: &mut Vec<Diagnostic>) {
    let is_output = |c: &str| {
        KNOWN_OUTPUT_NODES.contains(&c) || c.starts_with("Save") || c.starts_with("Preview")
    };
    let sinks = g.sinks();
    if !sinks.iter().any(|&i| is_output(g.class[i])) {
        let classes: Vec<&str> = sinks.iter().map(|&i| g.class[i]).collect();
        diags.push(
            Diagnostic::warning(
                "no_output_node",
                format!(
                    "no known output node (such as SaveImage, SaveAnimatedWEBP, VHS_VideoCombine); the final nodes are: {}",
                    classes.join(", ")
                ),
            )
            .file(file)
            .fix("add a Save node, or check with the server's schema (--server/--object-info) if a custom node saves the output"),
        );
        return;
    }
    for &i in &sinks {
        if !is_output(g.class[i]) {
            diags.push(
                Diagnostic::warning(
                    "unused_node",
                    "its outputs are not connected to anything, so ComfyUI will not run it",
                )
                .file(file)
                .node(g.ids[i])
                .title(g.titles[i])
                .class(g.class[i])
                .fix("connect it, or remove it (if it is a custom output node, ignore this)"),
            );
        }
    }
}

/// Tiny deterministic generator for the relabeling check (no global RNG: verify's output must be
/// the same on every run).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Renames every node to a random hex ID and shuffles node order, rewriting links.
pub fn relabel(nodes: &Map<String, Value>, seed: u64) -> Map<String, Value> {
    let mut rng = SplitMix(seed);
    let mut ids: Vec<(String, String)> = nodes
        .keys()
        .map(|k| (k.clone(), format!("{:012x}", rng.next() >> 16)))
        .collect();
    let map: std::collections::HashMap<&str, &str> =
        ids.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut out_nodes: Vec<(String, Value)> = nodes
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if let Some(ins) = v.get_mut("inputs").and_then(Value::as_object_mut) {
                for iv in ins.values_mut() {
                    if let Some((id, _)) = crate::workflow::as_link(iv) {
                        if let Some(new) = map.get(id.to_key().as_str()) {
                            iv[0] = Value::String(new.to_string());
                        }
                    }
                }
            }
            (map[k.as_str()].to_string(), v)
        })
        .collect();
    // Fisher-Yates
    for i in (1..out_nodes.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        out_nodes.swap(i, j);
    }
    ids.clear();
    out_nodes.into_iter().collect()
}

fn consistency_checks(
    nodes: &Map<String, Value>,
    file: &str,
    table: &NameTable,
    report: &mut FileReport,
) {
    let Ok(first) = normalize::normalize(nodes, file, table) else {
        return;
    };
    report.normalized_ids = Some(
        first
            .map
            .iter()
            .map(|(o, n)| (o.clone(), Value::String(n.clone())))
            .collect(),
    );
    for tie in &first.literal_ties {
        report.diagnostics.push(
            Diagnostic::info(
                "structural_tie",
                format!(
                    "output nodes {} have identical structure; their normalized names are ordered by their values and where their inputs are also used",
                    tie.join(", ")
                ),
            )
            .file(file),
        );
    }
    let again = normalize::normalize(&first.nodes, file, table).map(|n| n.nodes);
    if again.as_ref() != Ok(&first.nodes) {
        report.diagnostics.push(
            Diagnostic::error(
                "normalize_not_idempotent",
                "normalizing the normalized workflow changed it",
            )
            .file(file)
            .fix("please report this workflow as a comfyctl bug"),
        );
    }
    for seed in 1..=3u64 {
        let shuffled = relabel(nodes, seed);
        match normalize::normalize(&shuffled, file, table) {
            Ok(n) if n.nodes == first.nodes => {}
            _ => {
                let fix = if first.literal_ties.is_empty() {
                    "please report this workflow as a comfyctl bug"
                } else {
                    "expected for structurally identical outputs with identical values; harmless"
                };
                report.diagnostics.push(
                    Diagnostic::warning(
                        "normalize_unstable",
                        "normalizing a relabeled, reordered copy gave different IDs",
                    )
                    .file(file)
                    .fix(fix),
                );
                break;
            }
        }
    }
}

/// Human-readable rendering of one file's report (to standard error or out).
pub fn render(report: &FileReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for d in &report.diagnostics {
        let _ = writeln!(s, "{d}");
    }
    let status = if report.valid { "ok" } else { "FAILED" };
    let _ = writeln!(
        s,
        "{}: {status}: {} node(s), {} error(s), {} warning(s)",
        report.file,
        report.nodes.unwrap_or(0),
        report.errors,
        report.warnings
    );
    if let Some(p) = &report.injection {
        let ids = report.normalized_ids.as_ref();
        let show = |id: &str| -> String {
            match ids.and_then(|m| m.get(id)).and_then(Value::as_str) {
                Some(n) if n != id => format!("{id} (normalized: {n})"),
                _ => id.to_string(),
            }
        };
        let t = |t: &Option<String>| t.as_ref().map(|t| format!(" \"{t}\"")).unwrap_or_default();
        if p.images.is_empty() {
            let _ = writeln!(s, "  images:   none (no LoadImage node)");
        }
        for i in &p.images {
            let _ = writeln!(
                s,
                "  image:    node {}{}, currently {}",
                show(&i.node),
                t(&i.title),
                i.image.as_deref().unwrap_or("(linked)")
            );
        }
        for (label, pts) in [("positive", &p.positive), ("negative", &p.negative)] {
            if pts.is_empty() {
                let _ = writeln!(s, "  {label}: not found (use --set NODE.text=...)");
            }
            for x in pts {
                let _ = writeln!(
                    s,
                    "  {label}: node {}{} ({})",
                    show(&x.node),
                    t(&x.title),
                    x.inputs.join(", ")
                );
            }
        }
        for x in &p.seeds {
            let _ = writeln!(
                s,
                "  seed:     node {} input '{}' = {}",
                show(&x.node),
                x.input,
                x.value
            );
        }
    }
    s
}
