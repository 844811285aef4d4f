//! Injection: finding and setting the inputs a user changes per run — input images, prompt
//! text, seeds, and anything else via `--set`. Shared by the ComfyUI and RunPod paths, and by
//! `verify`, which prints the injection points so scripts know what `send` will touch.
//!
//! Everything is resolved and every input file is read and checked *before* any network call,
//! so a typo costs nothing.

use crate::error::{Error, Result};
use crate::media::{self, Media};
use crate::normalize::Normalized;
use crate::workflow::{Graph, Input};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Classes whose `image` input names an uploaded file.
const IMAGE_LOADERS: &[&str] = &["LoadImage", "LoadImageMask"];
/// Literal string inputs that hold prompt text.
const TEXT_INPUTS: &[&str] = &["text", "text_g", "text_l", "t5xxl", "clip_l", "prompt"];
/// Literal inputs of a primitive node that a linked `text`/`seed` may come from.
const PRIMITIVE_INPUTS: &[&str] = &[
    "value",
    "string",
    "text",
    "String",
    "int",
    "seed",
    "noise_seed",
];
const SEED_INPUTS: &[&str] = &["seed", "noise_seed"];

/// What `send` can set in a workflow, as far as its graph tells.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct InjectionPoints {
    pub images: Vec<ImagePoint>,
    /// Prompt-text nodes reaching a sampler's `positive` input.
    pub positive: Vec<TextPoint>,
    /// Prompt-text nodes reaching a sampler's `negative` input.
    pub negative: Vec<TextPoint>,
    pub seeds: Vec<SeedPoint>,
    /// Text nodes that reach both `positive` and `negative` (so `--prompt` cannot tell them apart).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImagePoint {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub class_type: String,
    /// The file name it currently loads.
    pub image: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TextPoint {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub class_type: String,
    /// The literal inputs holding the text (`text`, or `text_g` + `text_l`, ...).
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeedPoint {
    pub node: String,
    pub input: String,
    pub value: Value,
}

/// Follows conditioning from a sampler input back to the text nodes that produce it, through
/// nodes such as WanImageToVideo (same-named input), ConditioningCombine, FluxGuidance
/// (`conditioning*` inputs), and a linked `text` (to a primitive string node).
fn trace_text(g: &Graph, start: usize, role: &str, found: &mut BTreeSet<usize>) {
    let mut stack = vec![start];
    let mut seen = BTreeSet::new();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        if text_inputs(g, i).is_some() {
            found.insert(i);
            continue;
        }
        // A node that carries the same role through (WanImageToVideo, ControlNetApplyAdvanced, ...)
        if let Some((src, _)) = g.link_of(i, role) {
            stack.push(src);
            continue;
        }
        for (name, src, _) in g.links(i) {
            if name.starts_with("conditioning") || name == "cond" {
                stack.push(src);
            }
        }
    }
}

/// The text inputs of node `i` if it is a prompt-text node: literal strings in `TEXT_INPUTS`, or
/// a `text` input linked to a primitive string node.
fn text_inputs(g: &Graph, i: usize) -> Option<Vec<String>> {
    let lits: Vec<String> = g.inputs[i]
        .iter()
        .filter(|(n, inp, v)| {
            TEXT_INPUTS.contains(n) && matches!(inp, Input::Value) && v.is_string()
        })
        .map(|(n, _, _)| n.to_string())
        .collect();
    if !lits.is_empty() {
        return Some(lits);
    }
    let (src, _) = g.link_of(i, "text")?;
    primitive_input(g, src, |v| v.is_string()).map(|_| vec!["text".to_string()])
}

/// The literal input of a primitive-like node (`PrimitiveString`, `String Literal`, ...).
fn primitive_input<'a>(g: &Graph<'a>, i: usize, ok: impl Fn(&Value) -> bool) -> Option<&'a str> {
    let lits: Vec<_> = g.inputs[i]
        .iter()
        .filter(|(_, inp, _)| matches!(inp, Input::Value))
        .collect();
    if g.inputs[i].len() == lits.len() {
        lits.iter()
            .find(|(n, _, v)| PRIMITIVE_INPUTS.contains(n) && ok(v))
            .map(|(n, _, _)| *n)
    } else {
        None
    }
}

fn title(g: &Graph, i: usize) -> Option<String> {
    g.titles[i].map(str::to_string)
}

/// Finds the injection points of a graph.
pub fn analyze(g: &Graph) -> InjectionPoints {
    let mut pts = InjectionPoints::default();
    let mut pos = BTreeSet::new();
    let mut neg = BTreeSet::new();
    for i in 0..g.len() {
        if let Some((src, _)) = g.link_of(i, "positive") {
            trace_text(g, src, "positive", &mut pos);
        }
        if let Some((src, _)) = g.link_of(i, "negative") {
            trace_text(g, src, "negative", &mut neg);
        }
        // Guiders with a single conditioning (Flux BasicGuider) carry the positive prompt.
        if g.class[i].contains("Guider") && g.link_of(i, "positive").is_none() {
            if let Some((src, _)) = g.link_of(i, "conditioning") {
                trace_text(g, src, "positive", &mut pos);
            }
        }
        if IMAGE_LOADERS.contains(&g.class[i]) {
            pts.images.push(ImagePoint {
                node: g.ids[i].to_string(),
                title: title(g, i),
                class_type: g.class[i].to_string(),
                image: g
                    .value_of(i, "image")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        for &s in SEED_INPUTS {
            if let Some(v) = g.value_of(i, s).filter(|v| v.is_number()) {
                pts.seeds.push(SeedPoint {
                    node: g.ids[i].to_string(),
                    input: s.to_string(),
                    value: v.clone(),
                });
            }
        }
    }
    for &i in pos.intersection(&neg) {
        pts.ambiguous.push(g.ids[i].to_string());
    }
    let point = |i: usize| TextPoint {
        node: g.ids[i].to_string(),
        title: title(g, i),
        class_type: g.class[i].to_string(),
        inputs: text_inputs(g, i).unwrap_or_default(),
    };
    pts.positive = pos.difference(&neg).map(|&i| point(i)).collect();
    pts.negative = neg.difference(&pos).map(|&i| point(i)).collect();
    pts
}

/// `--image [NODE=]PATH`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageArg {
    pub node: Option<String>,
    pub path: PathBuf,
}

impl ImageArg {
    /// `NODE=PATH` splits at the first `=` unless the whole thing is an existing file.
    pub fn parse(s: &str) -> ImageArg {
        if let Some((node, path)) = s.split_once('=') {
            if !std::path::Path::new(s).exists() && !node.is_empty() {
                return ImageArg {
                    node: Some(node.to_string()),
                    path: PathBuf::from(path),
                };
            }
        }
        ImageArg {
            node: None,
            path: PathBuf::from(s),
        }
    }
}

/// `--set NODE.INPUT=VALUE`
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    pub node: String,
    pub input: String,
    pub value: Value,
}

impl SetArg {
    /// VALUE is JSON when it parses as JSON, else a plain string. NODE may contain dots (titles
    /// do); the input name is what follows the last dot before `=`.
    pub fn parse(s: &str) -> Result<SetArg> {
        let bad = || {
            Error::Usage(format!(
                "--set '{s}': expected NODE.INPUT=VALUE, e.g. --set ksampler_1.steps=30"
            ))
        };
        let (lhs, value) = s.split_once('=').ok_or_else(bad)?;
        let (node, input) = lhs.rsplit_once('.').ok_or_else(bad)?;
        if node.is_empty() || input.is_empty() {
            return Err(bad());
        }
        let value =
            serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.into()));
        Ok(SetArg {
            node: node.to_string(),
            input: input.to_string(),
            value,
        })
    }
}

/// Seed choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedChoice {
    Fixed(u64),
    Random,
}

/// What the user asked to change.
#[derive(Debug, Clone, Default)]
pub struct InjectOptions {
    pub images: Vec<ImageArg>,
    pub prompt: Option<String>,
    pub negative: Option<String>,
    pub seed: Option<SeedChoice>,
    pub sets: Vec<SetArg>,
}

/// An input image, read and checked.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The node (final ID, after normalization) whose `image` input gets it.
    pub node: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub media: Media,
    /// Content-addressed name: `comfyctl-<first 16 hex of sha256>.<ext>`. The same image always
    /// gets the same name, so re-sending reuses the server's file and its cache entry (LoadImage
    /// hashes file bytes), and concurrent senders never overwrite each other's inputs.
    pub upload_name: String,
}

/// Everything to change, resolved against the workflow's final node IDs.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub images: Vec<PreparedImage>,
    /// `(node, input, value)` edits for text, seeds and `--set`.
    pub edits: Vec<(String, String, Value)>,
    /// The seed actually used, when one was set.
    pub seed: Option<u64>,
    /// Whether the workflow has a seed input `--seed` / `--random-seed` can set (for hints).
    pub has_seed: bool,
    /// Things worth telling the user that do not stop the run (e.g. `--set` of an input the node
    /// does not have yet: it may be a valid optional input, or a typo).
    pub warnings: Vec<String>,
}

/// Resolves a user's node reference (final ID, original ID, or `_meta.title`) among `candidates`
/// (indices into `g`).
fn resolve_node(
    g: &Graph,
    rename: Option<&Normalized>,
    reference: &str,
    candidates: &[usize],
    what: &str,
) -> Result<usize> {
    let original_of = |i: usize| -> Option<&str> {
        rename.and_then(|r| {
            r.map
                .iter()
                .find(|(_, n)| n == g.ids[i])
                .map(|(o, _)| o.as_str())
        })
    };
    let matches = |pred: &dyn Fn(usize) -> bool| -> Vec<usize> {
        candidates.iter().copied().filter(|&i| pred(i)).collect()
    };
    let by_id = matches(&|i| g.ids[i] == reference);
    let by_orig = matches(&|i| original_of(i) == Some(reference));
    let by_title = matches(&|i| g.titles[i] == Some(reference));
    let by_title_ci = matches(&|i| g.titles[i].is_some_and(|t| t.eq_ignore_ascii_case(reference)));
    for set in [by_id, by_orig, by_title, by_title_ci] {
        match set.len() {
            0 => continue,
            1 => return Ok(set[0]),
            _ => {
                return Err(Error::Usage(format!(
                    "'{reference}' matches several {what}: {}; use the node ID",
                    describe(g, rename, &set)
                )))
            }
        }
    }
    Err(Error::Usage(format!(
        "no {what} called '{reference}'; candidates: {}",
        if candidates.is_empty() {
            "none".to_string()
        } else {
            describe(g, rename, candidates)
        }
    )))
}

fn describe(g: &Graph, rename: Option<&Normalized>, set: &[usize]) -> String {
    set.iter()
        .map(|&i| {
            let mut s = g.ids[i].to_string();
            if let Some(orig) = rename.and_then(|r| r.map.iter().find(|(_, n)| n == g.ids[i])) {
                if orig.0 != g.ids[i] {
                    s.push_str(&format!(" (was {})", orig.0));
                }
            }
            if let Some(t) = g.titles[i] {
                s.push_str(&format!(" \"{t}\""));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads and checks an input image: it must exist and be PNG, JPEG, WEBP or GIF by its bytes.
pub fn read_image(path: &std::path::Path) -> Result<(Vec<u8>, Media)> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "--image {}: cannot read the file: {e}",
            path.display()
        ))
    })?;
    match media::sniff(&bytes) {
        Some(m) if m.is_image() => Ok((bytes, m)),
        Some(m) => Err(Error::Usage(format!(
            "--image {}: this is a {} file, not an image (PNG, JPEG, WEBP or GIF)",
            path.display(),
            m.name()
        ))),
        None => Err(Error::Usage(format!(
            "--image {}: not a PNG, JPEG, WEBP or GIF image (it starts with {})",
            path.display(),
            media::describe_start(&bytes)
        ))),
    }
}

/// The content-addressed upload name for some image bytes.
pub fn content_name(bytes: &[u8], m: Media) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("comfyctl-{hex}.{}", m.ext())
}

/// Resolves `opts` against the (already normalized, if wanted) node map and reads every image.
/// `rename` lets users refer to nodes by their original IDs.
pub fn plan(
    nodes: &Map<String, Value>,
    file: &str,
    rename: Option<&Normalized>,
    opts: &InjectOptions,
) -> Result<Plan> {
    let g = Graph::build(nodes, file).map_err(|d| Error::InvalidWorkflow {
        file: file.to_string(),
        diagnostics: d,
    })?;
    let pts = analyze(&g);
    let mut plan = Plan {
        has_seed: !pts.seeds.is_empty(),
        ..Plan::default()
    };

    // Images.
    let loaders: Vec<usize> = (0..g.len())
        .filter(|&i| IMAGE_LOADERS.contains(&g.class[i]))
        .collect();
    let mut used = BTreeSet::new();
    for arg in &opts.images {
        let i = match &arg.node {
            Some(r) => resolve_node(&g, rename, r, &loaders, "LoadImage node")?,
            None => match loaders.len() {
                1 => loaders[0],
                0 => {
                    return Err(Error::Usage(format!(
                        "--image {}: the workflow has no LoadImage node to put it in",
                        arg.path.display()
                    )))
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "--image {}: the workflow has {} LoadImage nodes; say which with NODE=PATH, one of: {}",
                        arg.path.display(),
                        loaders.len(),
                        describe(&g, rename, &loaders)
                    )))
                }
            },
        };
        if !used.insert(i) {
            return Err(Error::Usage(format!(
                "--image given twice for node {}",
                g.ids[i]
            )));
        }
        let (bytes, m) = read_image(&arg.path)?;
        plan.images.push(PreparedImage {
            node: g.ids[i].to_string(),
            path: arg.path.clone(),
            upload_name: content_name(&bytes, m),
            bytes,
            media: m,
        });
    }

    // Prompt text.
    for (text, points, role, flag) in [
        (&opts.prompt, &pts.positive, "positive", "--prompt"),
        (&opts.negative, &pts.negative, "negative", "--negative"),
    ] {
        let Some(text) = text else { continue };
        if points.is_empty() {
            let hint = if pts.ambiguous.is_empty() {
                String::new()
            } else {
                format!(
                    " (node {} feeds both positive and negative)",
                    pts.ambiguous.join(", ")
                )
            };
            return Err(Error::Usage(format!(
                "{flag}: cannot tell which node holds the {role} prompt{hint}; set it with --set NODE.text=\"...\""
            )));
        }
        for p in points {
            let i = g.index[p.node.as_str()];
            if g.link_of(i, "text").is_some()
                && p.inputs == ["text"]
                && g.value_of(i, "text").is_none()
            {
                let (src, _) = g.link_of(i, "text").expect("checked");
                let input = primitive_input(&g, src, |v| v.is_string()).expect("traced");
                plan.edits.push((
                    g.ids[src].to_string(),
                    input.to_string(),
                    Value::String(text.clone()),
                ));
            } else {
                for input in &p.inputs {
                    plan.edits
                        .push((p.node.clone(), input.clone(), Value::String(text.clone())));
                }
            }
        }
    }

    // Seeds.
    if let Some(choice) = opts.seed {
        let seed = match choice {
            SeedChoice::Fixed(s) => s,
            // 2^50, as ComfyUI's frontend does: safe for every seed widget and for JavaScript.
            SeedChoice::Random => rand::random::<u64>() % (1u64 << 50),
        };
        plan.seed = Some(seed);
        let mut any = false;
        for i in 0..g.len() {
            for &s in SEED_INPUTS {
                if g.value_of(i, s).is_some_and(Value::is_number) {
                    plan.edits
                        .push((g.ids[i].to_string(), s.to_string(), Value::from(seed)));
                    any = true;
                } else if let Some((src, _)) = g.link_of(i, s) {
                    if let Some(input) = primitive_input(&g, src, Value::is_number) {
                        plan.edits.push((
                            g.ids[src].to_string(),
                            input.to_string(),
                            Value::from(seed),
                        ));
                        any = true;
                    }
                }
            }
        }
        if !any {
            return Err(Error::Usage(
                "--seed/--random-seed: the workflow has no 'seed' or 'noise_seed' input".into(),
            ));
        }
    }

    // --set
    let all: Vec<usize> = (0..g.len()).collect();
    for s in &opts.sets {
        let i = resolve_node(&g, rename, &s.node, &all, "node")?;
        match g.inputs[i].iter().find(|(n, _, _)| *n == s.input) {
            Some((_, Input::Link { src, slot }, _)) => {
                return Err(Error::Usage(format!(
                    "--set {}.{}: that input is a link (from node {} output {slot}), not a value; change the workflow instead",
                    s.node, s.input, g.ids[*src]
                )))
            }
            Some(_) => {}
            None => {
                let names: Vec<&str> = g.inputs[i]
                    .iter()
                    .filter(|(_, inp, _)| matches!(inp, Input::Value))
                    .map(|(n, _, _)| *n)
                    .collect();
                // A new input is allowed (optional inputs are often left out), but say what exists.
                if names.is_empty() {
                    return Err(Error::Usage(format!(
                        "--set {}.{}: node {} ({}) has no literal inputs",
                        s.node, s.input, g.ids[i], g.class[i]
                    )));
                }
                if !names.iter().any(|n| n.eq_ignore_ascii_case(&s.input)) && crate::suggest::close_match(&s.input, &names).is_some() {
                    return Err(Error::Usage(format!(
                        "--set {}.{}: node {} ({}) has no input '{}'; did you mean '{}'? Its inputs: {}",
                        s.node,
                        s.input,
                        g.ids[i],
                        g.class[i],
                        s.input,
                        crate::suggest::close_match(&s.input, &names).unwrap_or_default(),
                        names.join(", ")
                    )));
                }
                plan.warnings.push(format!(
                    "--set {}.{}: node {} ({}) has no input '{}' yet; adding it (its inputs: {}). ComfyUI ignores inputs a node does not declare, so check the name",
                    s.node,
                    s.input,
                    g.ids[i],
                    g.class[i],
                    s.input,
                    names.join(", ")
                ));
            }
        }
        plan.edits
            .push((g.ids[i].to_string(), s.input.clone(), s.value.clone()));
    }
    Ok(plan)
}

/// Applies a plan. `image_name` gives the name the server knows each image by (the upload's
/// returned name for ComfyUI, the content name for RunPod).
pub fn apply(
    nodes: &mut Map<String, Value>,
    plan: &Plan,
    image_name: impl Fn(&PreparedImage) -> String,
) {
    for img in &plan.images {
        if let Some(inputs) = nodes
            .get_mut(&img.node)
            .and_then(|n| n.get_mut("inputs"))
            .and_then(Value::as_object_mut)
        {
            inputs.insert("image".into(), Value::String(image_name(img)));
        }
    }
    for (node, input, value) in &plan.edits {
        if let Some(inputs) = nodes
            .get_mut(node)
            .and_then(|n| n.get_mut("inputs"))
            .and_then(Value::as_object_mut)
        {
            inputs.insert(input.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_arg_parsing() {
        let s = SetArg::parse("ksampler_1.steps=30").unwrap();
        assert_eq!(
            (s.node.as_str(), s.input.as_str(), s.value),
            ("ksampler_1", "steps", json!(30))
        );
        let s = SetArg::parse("CLIP Text Encode (v1.5).text=a cat").unwrap();
        assert_eq!(s.node, "CLIP Text Encode (v1.5)");
        assert_eq!(s.value, json!("a cat"));
        assert!(SetArg::parse("nodots=1").is_err());
    }

    #[test]
    fn finds_prompts_through_wan() {
        let w: Value = serde_json::from_str(include_str!("../workflows/wan_i2v.json")).unwrap();
        let g = Graph::build(w.as_object().unwrap(), "w").unwrap();
        let p = analyze(&g);
        assert_eq!(p.positive.len(), 1);
        assert_eq!(p.positive[0].node, "6");
        assert_eq!(p.negative[0].node, "7");
        assert_eq!(p.images[0].node, "52");
        assert_eq!(p.seeds[0].node, "3");
    }
}
