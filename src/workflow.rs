//! The workflow model: loading API-format JSON (bare, RunPod request or `/prompt` body), telling
//! links from literal values, and a validated, index-based [`Graph`] view for the algorithms.
//!
//! The JSON itself is kept as a `serde_json` tree built with `preserve_order` and
//! `arbitrary_precision`, so that every value comes back out exactly as it went in: a seed such as
//! `987948718394761` or a float written `6.0` is never reformatted, and input order is kept (the
//! normalizer walks inputs in the node's own order).

use crate::diagnostic::Diagnostic;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// How a workflow was wrapped on disk. Kept so that `normalize` can write the same wrapper back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapper {
    /// A bare API-format object: node ID → node.
    Bare,
    /// A RunPod request `{"input": {"workflow": {...}, "images": [...]}}`.
    RunPod,
    /// A ComfyUI `/prompt` body `{"prompt": {...}, "client_id": ...}`.
    PromptBody,
}

/// Why a file could not be loaded as a workflow at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: not valid JSON: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: this is a UI-format workflow; export it with 'Export (API)' in ComfyUI (or run 'comfyctl convert' with the server's schema)")]
    UiFormat { file: String },
    #[error("{file}: not an API-format workflow: {reason}")]
    NotAWorkflow { file: String, reason: String },
    /// A PNG/WEBP/MP4 that carries neither ComfyUI's `prompt` nor its `workflow` metadata.
    #[error(
        "{file}: no workflow embedded (saved with --disable-metadata, or not made by ComfyUI)"
    )]
    NoEmbeddedWorkflow {
        file: String,
        container: crate::embedded::Container,
    },
    /// A media file whose container or embedded JSON could not be read.
    #[error("{file}: cannot read the workflow embedded in this {container} file: {reason}")]
    BadMedia {
        file: String,
        container: crate::embedded::Container,
        reason: String,
    },
}

impl LoadError {
    /// The same problem as a diagnostic, for `verify`'s uniform output.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            LoadError::Io { file, source } => Diagnostic::error("io", format!("cannot read: {source}"))
                .file(file.clone())
                .fix("check the path and permissions"),
            LoadError::Parse {
                file,
                line,
                column,
                message,
            } => Diagnostic::error("parse", format!("not valid JSON: {message}"))
                .file(file.clone())
                .at(*line, *column)
                .fix("fix the JSON syntax at that position (a trailing comma or a missing quote is typical)"),
            LoadError::UiFormat { file } => Diagnostic::error(
                "ui_format",
                "this is a UI-format workflow (it has 'nodes' and 'links'), not the API format ComfyUI's /prompt takes",
            )
            .file(file.clone())
            .fix("export it with 'Export (API)' in ComfyUI, or run 'comfyctl convert' with the server's object_info"),
            LoadError::NotAWorkflow { file, reason } => {
                Diagnostic::error("not_a_workflow", reason.clone())
                    .file(file.clone())
                    .fix("give an API-format workflow: an object of node ID -> {\"class_type\", \"inputs\"}")
            }
            LoadError::NoEmbeddedWorkflow { file, container } => Diagnostic::error(
                "no_embedded_workflow",
                format!("this {container} file has no workflow embedded (saved with --disable-metadata, or not made by ComfyUI)"),
            )
            .file(file.clone())
            .fix("use the workflow file itself, or an output saved by a ComfyUI running without --disable-metadata"),
            LoadError::BadMedia { file, container, reason } => Diagnostic::error(
                "bad_media",
                format!("cannot read the workflow embedded in this {container} file: {reason}"),
            )
            .file(file.clone())
            .fix("check that the file is complete (not truncated by a download)"),
        }
    }
}

/// A loaded workflow file: the whole JSON document and where the workflow sits in it.
#[derive(Debug, Clone)]
pub struct Document {
    /// Display name of the source: the path, or `<stdin>`.
    pub file: String,
    pub wrapper: Wrapper,
    root: Value,
}

/// The display name used for standard input.
pub const STDIN_NAME: &str = "<stdin>";

impl Document {
    /// Reads `path`, or standard input when `path` is `-`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let (file, text) = read_source(path)?;
        Self::parse(&text, &file)
    }

    /// Parses a document from text; `file` is only used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Self, LoadError> {
        // serde_json keeps its recursion limit (128) on: a deeply nested file is an error, not a crash.
        let root: Value = serde_json::from_str(text).map_err(|e| LoadError::Parse {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Self::from_value(root, file)
    }

    /// Wraps an already-parsed value.
    pub fn from_value(root: Value, file: &str) -> Result<Self, LoadError> {
        let not = |reason: String| LoadError::NotAWorkflow {
            file: file.to_string(),
            reason,
        };
        let obj = match &root {
            Value::Object(o) => o,
            other => {
                return Err(not(format!(
                    "the top level is {}, not an object",
                    json_kind(other)
                )))
            }
        };
        if is_ui_format(obj) {
            return Err(LoadError::UiFormat { file: file.into() });
        }
        let wrapper =
            if let Some(input) = obj.get("input").filter(|_| !looks_like_node_map(obj)) {
                let Some(input) = input.as_object() else {
                    return Err(not("'input' is not an object".into()));
                };
                match input.get("workflow") {
                    Some(Value::Object(w)) => {
                        if is_ui_format(w) {
                            return Err(LoadError::UiFormat { file: file.into() });
                        }
                    }
                    Some(Value::String(_)) => return Err(not(
                        "'input.workflow' is a JSON string; it must be the workflow object itself"
                            .into(),
                    )),
                    Some(other) => {
                        return Err(not(format!(
                            "'input.workflow' is {}, not an object",
                            json_kind(other)
                        )))
                    }
                    None => return Err(not("a RunPod request without 'input.workflow'".into())),
                }
                Wrapper::RunPod
            } else if let Some(p) = obj.get("prompt").filter(|_| !looks_like_node_map(obj)) {
                match p {
                    Value::Object(w) if is_ui_format(w) => {
                        return Err(LoadError::UiFormat { file: file.into() })
                    }
                    Value::Object(_) => Wrapper::PromptBody,
                    other => {
                        return Err(not(format!(
                            "'prompt' is {}, not an object",
                            json_kind(other)
                        )))
                    }
                }
            } else {
                Wrapper::Bare
            };
        let doc = Document {
            file: file.to_string(),
            wrapper,
            root,
        };
        if doc.nodes().is_empty() {
            return Err(not("it has no nodes".into()));
        }
        Ok(doc)
    }

    /// The node map (node ID → node object), wherever the wrapper keeps it.
    pub fn nodes(&self) -> &Map<String, Value> {
        let v = match self.wrapper {
            Wrapper::Bare => &self.root,
            Wrapper::RunPod => &self.root["input"]["workflow"],
            Wrapper::PromptBody => &self.root["prompt"],
        };
        v.as_object().expect("checked at load")
    }

    pub fn nodes_mut(&mut self) -> &mut Map<String, Value> {
        let v = match self.wrapper {
            Wrapper::Bare => &mut self.root,
            Wrapper::RunPod => &mut self.root["input"]["workflow"],
            Wrapper::PromptBody => &mut self.root["prompt"],
        };
        v.as_object_mut().expect("checked at load")
    }

    /// Replaces the node map, keeping the wrapper around it.
    pub fn set_nodes(&mut self, nodes: Map<String, Value>) {
        *self.nodes_mut() = nodes;
    }

    /// The whole document (wrapper included).
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// The `input` object of a RunPod request file (its `workflow`, `images`, and any other keys
    /// such as `comfy_org_api_key`); `None` for every other wrapper, where a top-level `"input"`
    /// key is just a node ID.
    pub fn runpod_input(&self) -> Option<&Map<String, Value>> {
        match self.wrapper {
            Wrapper::RunPod => self.root["input"].as_object(),
            _ => None,
        }
    }

    /// The whole document as comfyctl writes JSON: two-space indent and a final newline.
    pub fn to_pretty_string(&self) -> String {
        to_pretty_string(&self.root)
    }
}

/// Reads a workflow's text once: `(display name, text)` for a path, or for standard input when
/// `path` is `-`. Callers that need the text more than once (the normalize fast path, `--check`,
/// UI conversion) keep it instead of reading the file again.
///
/// A ComfyUI output (PNG, WEBP, MP4) stands for the workflow embedded in it: the text returned
/// is its API prompt (see [`embedded_text`]), so every command that reads workflows reads
/// outputs too.
pub fn read_source(path: &Path) -> Result<(String, String), LoadError> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        let io = |source| LoadError::Io {
            file: STDIN_NAME.into(),
            source,
        };
        std::io::stdin().read_to_end(&mut bytes).map_err(io)?;
        if let Some(kind) = crate::embedded::sniff(&bytes) {
            let found = crate::embedded::extract_from(kind, std::io::Cursor::new(&bytes));
            return Ok((
                STDIN_NAME.to_string(),
                embedded_text(kind, found, STDIN_NAME)?,
            ));
        }
        let s = String::from_utf8(bytes).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        Ok((STDIN_NAME.to_string(), s))
    } else {
        let file = path.display().to_string();
        if let Some(text) = read_media_file(path, &file)? {
            return Ok((file, text));
        }
        let text = read_text_file(path).map_err(|source| LoadError::Io {
            file: file.clone(),
            source,
        })?;
        Ok((file, text))
    }
}

/// The workflow text of `path` if it is a regular file that starts like a PNG, WEBP or MP4;
/// `None` for everything else, which is read as text. Only regular files are sniffed: opening a
/// named pipe twice would hang (see [`read_text_file`]). Anything that goes wrong before the
/// file is known to be media is left to the text read, which reports it as before.
fn read_media_file(path: &Path, file: &str) -> Result<Option<String>, LoadError> {
    use std::io::{Seek, SeekFrom};
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return Ok(None);
    };
    let mut head = Vec::with_capacity(crate::embedded::SNIFF_BYTES);
    if (&mut f)
        .take(crate::embedded::SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .is_err()
    {
        return Ok(None);
    }
    let Some(kind) = crate::embedded::sniff(&head) else {
        return Ok(None);
    };
    let found = f
        .seek(SeekFrom::Start(0))
        .map_err(crate::embedded::EmbedError::from)
        .and_then(|_| crate::embedded::extract_from(kind, f));
    embedded_text(kind, found, file).map(Some)
}

/// The workflow text a media file stands for: its API prompt with ComfyUI's own additions
/// removed ([`crate::embedded::strip_runtime_keys`]); else its UI workflow as stored, which then
/// goes the UI-format way (converted with a schema, or the "Export (API)" error); else
/// [`LoadError::NoEmbeddedWorkflow`].
fn embedded_text(
    container: crate::embedded::Container,
    found: Result<crate::embedded::Embedded, crate::embedded::EmbedError>,
    file: &str,
) -> Result<String, LoadError> {
    let bad = |reason: String| LoadError::BadMedia {
        file: file.to_string(),
        container,
        reason,
    };
    let found = found.map_err(|e| match e {
        crate::embedded::EmbedError::Io(source) => LoadError::Io {
            file: file.to_string(),
            source,
        },
        crate::embedded::EmbedError::Malformed { reason, .. } => bad(reason),
    })?;
    if let Some(prompt) = found.prompt {
        let mut v: Value = serde_json::from_str(&prompt)
            .map_err(|e| bad(format!("its 'prompt' is not valid JSON: {e}")))?;
        let Value::Object(nodes) = &mut v else {
            return Err(bad(format!(
                "its 'prompt' is {}, not an object",
                json_kind(&v)
            )));
        };
        crate::embedded::strip_runtime_keys(nodes);
        return Ok(to_pretty_string(&v));
    }
    if let Some(workflow) = found.workflow {
        return Ok(workflow);
    }
    Err(LoadError::NoEmbeddedWorkflow {
        file: file.to_string(),
        container,
    })
}

/// Files from this size on are read by two threads at once.
const PARALLEL_READ_BYTES: u64 = 4 << 20;

/// `std::fs::read_to_string`, but a large regular file is read by two threads, each into its own
/// half of the buffer: most of the time of reading a cached file is the kernel filling fresh
/// memory page by page, and two cores do that twice as fast (`scripts/bench_normalize.sh`).
fn read_text_file(path: &Path) -> std::io::Result<String> {
    #[cfg(unix)]
    {
        use std::io::Read;
        use std::os::unix::fs::FileExt;
        // Opened once, and the fallback below reads this same handle: opening the path again
        // would wait forever on a named pipe whose writer has already finished (or make it fail
        // with a broken pipe in between), as `comfyctl normalize fifo` did.
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_file() && meta.len() >= PARALLEL_READ_BYTES {
            // `vec!` aborts the process when the memory is not there (a huge or sparse file);
            // the plain read below reports "out of memory" instead, as `read_to_string` did.
            let len = usize::try_from(meta.len())
                .ok()
                .filter(|&len| Vec::<u8>::new().try_reserve_exact(len).is_ok());
            if let Some(len) = len {
                let mut buf = vec![0u8; len];
                let mid = len / 2;
                let (first, second) = buf.split_at_mut(mid);
                let read = std::thread::scope(|s| {
                    let other = s.spawn(|| file.read_exact_at(second, mid as u64));
                    file.read_exact_at(first, 0)?;
                    other
                        .join()
                        .unwrap_or_else(|_| Err(std::io::Error::other("reader panicked")))
                });
                // A file that changed size while being read: read it again the plain way
                // (`read_exact_at` and `read_at` leave the handle's position at 0).
                let mut probe = [0u8; 1];
                if read.is_ok() && file.read_at(&mut probe, len as u64)? == 0 {
                    return String::from_utf8(buf).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "stream did not contain valid UTF-8",
                        )
                    });
                }
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text)
    }
    #[cfg(not(unix))]
    std::fs::read_to_string(path)
}

/// Two-space indented JSON with a trailing newline.
pub fn to_pretty_string(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("a Value always serializes");
    s.push('\n');
    s
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A short description of a JSON value's kind, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// ComfyUI's UI ("litegraph") format: a `nodes` array plus `links`, `last_node_id` or `version`.
pub fn is_ui_format(obj: &Map<String, Value>) -> bool {
    matches!(obj.get("nodes"), Some(Value::Array(_)))
        && (obj.contains_key("links")
            || obj.contains_key("last_node_id")
            || obj.contains_key("version"))
}

/// True when every value is an object with a `class_type`: then keys such as "input" or "prompt"
/// are node IDs, not wrappers.
fn looks_like_node_map(obj: &Map<String, Value>) -> bool {
    obj.values()
        .all(|v| v.get("class_type").is_some_and(Value::is_string))
}

/// Reads a link `[node_id, output_index]`: `node_id` a string or an integer, `output_index` a
/// non-negative integer. Anything else is a literal value.
pub fn as_link(v: &Value) -> Option<(LinkId<'_>, u64)> {
    let a = v.as_array()?;
    if a.len() != 2 {
        return None;
    }
    let idx = a[1].as_u64()?;
    match &a[0] {
        Value::String(s) => Some((LinkId::Str(s), idx)),
        Value::Number(n) => n.as_u64().map(|n| (LinkId::Int(n), idx)),
        _ => None,
    }
}

/// The node ID half of a link, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkId<'a> {
    Str(&'a str),
    Int(u64),
}

impl LinkId<'_> {
    pub fn to_key(self) -> String {
        match self {
            LinkId::Str(s) => s.to_string(),
            LinkId::Int(n) => n.to_string(),
        }
    }
}

/// A 2-element array `[string, number]` whose number is not a non-negative integer (`["5", -1]`,
/// `["5", 0.5]`). ComfyUI's `is_link` treats every `[str, int|float]` pair as a link, so this
/// fails there; comfyctl reports it instead of passing it on as a literal.
fn bad_link_index(v: &Value) -> Option<&Value> {
    let a = v.as_array()?;
    if a.len() != 2 || a[1].as_u64().is_some() || !a[1].is_number() || !a[0].is_string() {
        return None;
    }
    Some(&a[1])
}

/// One input of a node in the graph view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A literal value (string, number, object, `{"__value__": [...]}`, ...).
    Value,
    /// A link to output `slot` of node index `src`.
    Link { src: usize, slot: u64 },
}

/// A validated, index-based view of a workflow's nodes.
///
/// Node `i` has ID `ids[i]`; indices follow the file's node order. Only built when every node is
/// an object with a string `class_type` and an object `inputs` and every link points at an
/// existing node, so algorithms need no error paths.
#[derive(Debug)]
pub struct Graph<'a> {
    pub ids: Vec<&'a str>,
    pub class: Vec<&'a str>,
    pub titles: Vec<Option<&'a str>>,
    /// Inputs of node `i`, in the node's own order: `(name, input, value)`.
    pub inputs: Vec<Vec<(&'a str, Input, &'a Value)>>,
    pub index: HashMap<&'a str, usize>,
}

impl<'a> Graph<'a> {
    /// Builds the graph view, or returns every structural problem found (never only the first).
    pub fn build(nodes: &'a Map<String, Value>, file: &str) -> Result<Self, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let n = nodes.len();
        let mut ids = Vec::with_capacity(n);
        let mut class = Vec::with_capacity(n);
        let mut titles = Vec::with_capacity(n);
        let mut index = HashMap::with_capacity(n);
        for (i, (id, node)) in nodes.iter().enumerate() {
            ids.push(id.as_str());
            index.insert(id.as_str(), i);
            let title = node
                .get("_meta")
                .and_then(|m| m.get("title"))
                .and_then(Value::as_str);
            titles.push(title);
            let Some(obj) = node.as_object() else {
                diags.push(
                    Diagnostic::error(
                        "node_not_object",
                        format!("is {}, not a node object", json_kind(node)),
                    )
                    .file(file)
                    .node(id)
                    .fix("each node must be {\"class_type\": ..., \"inputs\": {...}}"),
                );
                class.push("");
                continue;
            };
            match obj.get("class_type") {
                Some(Value::String(c)) if !c.is_empty() => class.push(c.as_str()),
                Some(Value::String(_)) => {
                    diags.push(
                        Diagnostic::error("missing_class_type", "'class_type' is empty")
                            .file(file)
                            .node(id)
                            .title(title)
                            .fix("set 'class_type' to the node's type, e.g. \"KSampler\""),
                    );
                    class.push("");
                }
                Some(other) => {
                    diags.push(
                        Diagnostic::error(
                            "missing_class_type",
                            format!("'class_type' is {}, not a string", json_kind(other)),
                        )
                        .file(file)
                        .node(id)
                        .title(title)
                        .fix("set 'class_type' to the node's type name as a string"),
                    );
                    class.push("");
                }
                None => {
                    diags.push(
                        Diagnostic::error("missing_class_type", "has no 'class_type'")
                            .file(file)
                            .node(id)
                            .title(title)
                            .fix("add \"class_type\" with the node's type, e.g. \"LoadImage\""),
                    );
                    class.push("");
                }
            }
            match obj.get("inputs") {
                Some(Value::Object(_)) => {}
                Some(other) => diags.push(
                    Diagnostic::error(
                        "inputs_not_object",
                        format!("'inputs' is {}, not an object", json_kind(other)),
                    )
                    .file(file)
                    .node(id)
                    .title(title)
                    .class(class[i])
                    .fix(
                        "'inputs' must map input names to values or links [node_id, output_index]",
                    ),
                ),
                None => diags.push(
                    Diagnostic::error("inputs_not_object", "has no 'inputs'")
                        .file(file)
                        .node(id)
                        .title(title)
                        .class(class[i])
                        .fix("add \"inputs\": {} (with the node's inputs)"),
                ),
            }
        }
        let mut inputs = Vec::with_capacity(n);
        for (i, node) in nodes.values().enumerate() {
            let mut ins = Vec::new();
            if let Some(obj) = node.get("inputs").and_then(Value::as_object) {
                ins.reserve(obj.len());
                for (name, v) in obj {
                    let input = if let Some((target, slot)) = as_link(v) {
                        let key = target.to_key();
                        match index.get(key.as_str()) {
                            Some(&src) => Input::Link { src, slot },
                            None => {
                                diags.push(
                                    Diagnostic::error(
                                        "missing_node",
                                        format!("links to node '{key}', which does not exist"),
                                    )
                                    .file(file)
                                    .node(ids[i])
                                    .title(titles[i])
                                    .class(class[i])
                                    .input(name)
                                    .fix(format!(
                                        "reconnect '{name}' to an existing node, or add node '{key}' back"
                                    )),
                                );
                                Input::Value
                            }
                        }
                    } else if let Some(bad) = bad_link_index(v) {
                        diags.push(
                            Diagnostic::error(
                                "bad_output_index",
                                format!("output index {bad} is not a non-negative integer"),
                            )
                            .file(file)
                            .node(ids[i])
                            .title(titles[i])
                            .class(class[i])
                            .input(name)
                            .fix("a link is [\"node_id\", output_index] with output_index 0, 1, 2, ..."),
                        );
                        Input::Value
                    } else {
                        Input::Value
                    };
                    ins.push((name.as_str(), input, v));
                }
            }
            inputs.push(ins);
        }
        let graph = Graph {
            ids,
            class,
            titles,
            inputs,
            index,
        };
        if diags.is_empty() {
            if let Some(cycle) = graph.find_cycle() {
                // `cycle` follows inputs upstream; print it the way data flows.
                let first = cycle[0];
                let mut flow: Vec<&str> = cycle.iter().rev().map(|&i| graph.ids[i]).collect();
                flow.rotate_right(1);
                diags.push(
                    Diagnostic::error(
                        "cycle",
                        format!(
                            "is part of a cycle (each node feeds the next): {} -> {}",
                            flow.join(" -> "),
                            flow[0]
                        ),
                    )
                    .file(file)
                    .node(graph.ids[first])
                    .title(graph.titles[first])
                    .class(graph.class[first])
                    .fix("ComfyUI runs graphs without cycles; remove one of these links"),
                );
            }
        }
        if diags.is_empty() {
            Ok(graph)
        } else {
            Err(diags)
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Link sources of node `i`, in input order.
    pub fn links(&self, i: usize) -> impl Iterator<Item = (&'a str, usize, u64)> + '_ {
        self.inputs[i]
            .iter()
            .filter_map(|&(name, inp, _)| match inp {
                Input::Link { src, slot } => Some((name, src, slot)),
                Input::Value => None,
            })
    }

    /// The link in input `name` of node `i`, if that input is a link.
    pub fn link_of(&self, i: usize, name: &str) -> Option<(usize, u64)> {
        self.inputs[i].iter().find_map(|&(n, inp, _)| match inp {
            Input::Link { src, slot } if n == name => Some((src, slot)),
            _ => None,
        })
    }

    /// The literal value of input `name` of node `i`, if it is not a link.
    pub fn value_of(&self, i: usize, name: &str) -> Option<&'a Value> {
        self.inputs[i].iter().find_map(|&(n, inp, v)| match inp {
            Input::Value if n == name => Some(v),
            _ => None,
        })
    }

    /// How many links consume each node's outputs.
    pub fn consumer_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.len()];
        for i in 0..self.len() {
            for (_, src, _) in self.links(i) {
                c[src] += 1;
            }
        }
        c
    }

    /// Nodes whose outputs nobody consumes, in file order.
    pub fn sinks(&self) -> Vec<usize> {
        self.consumer_counts()
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// A cycle as a list of node indices (each links to the next's... upstream), if any.
    /// Iterative: a 100k-node chain must not overflow the stack.
    fn find_cycle(&self) -> Option<Vec<usize>> {
        // 0 = unseen, 1 = on stack, 2 = done
        let n = self.len();
        let mut state = vec![0u8; n];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut path: Vec<usize> = Vec::new();
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            stack.push((start, 0));
            state[start] = 1;
            path.push(start);
            while let Some(&mut (node, ref mut pos)) = stack.last_mut() {
                let ins = &self.inputs[node];
                let mut next = None;
                while *pos < ins.len() {
                    let p = *pos;
                    *pos += 1;
                    if let Input::Link { src, .. } = ins[p].1 {
                        next = Some(src);
                        break;
                    }
                }
                match next {
                    Some(src) if state[src] == 1 => {
                        let at = path.iter().position(|&x| x == src).expect("on stack");
                        return Some(path[at..].to_vec());
                    }
                    Some(src) if state[src] == 0 => {
                        state[src] = 1;
                        stack.push((src, 0));
                        path.push(src);
                    }
                    Some(_) => {}
                    None => {
                        state[node] = 2;
                        stack.pop();
                        path.pop();
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn large_files_read_in_two_halves_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        // Multi-byte characters everywhere, so the halves meet inside one of them.
        let text: String = "é色\n".repeat(PARALLEL_READ_BYTES as usize / 3 + 7);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_text_file(&path).unwrap(), text);

        let mut bad = text.into_bytes();
        let last = bad.len() - 2;
        bad[last] = 0xff;
        std::fs::write(&path, &bad).unwrap();
        let err = read_text_file(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            std::fs::read_to_string(&path).unwrap_err().to_string()
        );
    }

    /// A named pipe is opened once: opening it again after its writer has finished would wait
    /// for another writer forever (it did about one time in three).
    #[cfg(unix)]
    #[test]
    fn a_named_pipe_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for _ in 0..20 {
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || std::fs::write(&fifo, "{}"))
            };
            let (tx, rx) = std::sync::mpsc::channel();
            {
                let fifo = fifo.clone();
                std::thread::spawn(move || tx.send(read_text_file(&fifo)));
            }
            let read = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("reading a named pipe does not hang");
            assert_eq!(read.unwrap(), "{}");
            writer.join().unwrap().unwrap();
        }
    }

    /// The shared loading path takes a ComfyUI output: its prompt, without `is_changed`.
    #[test]
    fn a_media_file_loads_as_its_embedded_prompt() {
        let doc = Document::load(Path::new("tests/fixtures/runpod_output.webp")).unwrap();
        assert_eq!(doc.wrapper, Wrapper::Bare);
        assert_eq!(doc.nodes().len(), 5);
        assert!(doc.nodes().values().all(|n| n.get("is_changed").is_none()));
        let e = Document::load(Path::new("workflows/example.png")).unwrap_err();
        assert!(matches!(e, LoadError::NoEmbeddedWorkflow { .. }), "{e}");
    }

    #[test]
    fn links_and_values() {
        assert!(as_link(&json!(["5", 0])).is_some());
        assert!(as_link(&json!([5, 1])).is_some());
        assert!(as_link(&json!(["5", -1])).is_none());
        assert!(as_link(&json!(["5", 0.5])).is_none());
        assert!(as_link(&json!(["a", "b"])).is_none());
        assert!(as_link(&json!([1, 2, 3])).is_none());
    }

    #[test]
    fn numbers_round_trip_exactly() {
        let text = r#"{"1":{"inputs":{"seed":987948718394761,"cfg":6.0,"d":1e-3,"x":6},"class_type":"KSampler"}}"#;
        let doc = Document::parse(text, "t").unwrap();
        let out = serde_json::to_string(doc.root()).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn wrappers_are_recognised() {
        let w = json!({"1": {"class_type": "X", "inputs": {}}});
        let d = Document::from_value(json!({"input": {"workflow": w, "images": []}}), "f").unwrap();
        assert_eq!(d.wrapper, Wrapper::RunPod);
        let d = Document::from_value(json!({"prompt": w, "client_id": "c"}), "f").unwrap();
        assert_eq!(d.wrapper, Wrapper::PromptBody);
        // A node that happens to be called "prompt" is a node, not a wrapper.
        let d = Document::from_value(json!({"prompt": {"class_type": "X", "inputs": {}}}), "f")
            .unwrap();
        assert_eq!(d.wrapper, Wrapper::Bare);
    }

    #[test]
    fn ui_format_is_named() {
        let e = Document::from_value(json!({"nodes": [], "links": [], "version": 0.4}), "ui.json")
            .unwrap_err();
        assert!(e.to_string().contains("Export (API)"), "{e}");
    }

    #[test]
    fn graph_reports_every_problem() {
        let w = json!({
            "1": {"class_type": "A", "inputs": {"x": ["9", 0]}},
            "2": 5,
            "3": {"inputs": {}},
            "4": {"class_type": "B", "inputs": {"y": ["1", -1]}},
        });
        let errs = Graph::build(w.as_object().unwrap(), "f").unwrap_err();
        let codes: Vec<_> = errs.iter().map(|d| d.code).collect();
        assert!(codes.contains(&"missing_node"));
        assert!(codes.contains(&"node_not_object"));
        assert!(codes.contains(&"missing_class_type"));
        assert!(codes.contains(&"bad_output_index"));
    }

    #[test]
    fn cycle_found() {
        let w = json!({
            "1": {"class_type": "A", "inputs": {"x": ["2", 0]}},
            "2": {"class_type": "A", "inputs": {"x": ["1", 0]}},
        });
        let errs = Graph::build(w.as_object().unwrap(), "f").unwrap_err();
        assert_eq!(errs[0].code, "cycle");
    }
}
