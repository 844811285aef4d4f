//! Node schemas (ComfyUI's `/object_info`): loading from a server, a file or the cache, and
//! schema-aware checks.
//!
//! `/object_info` is large (a stock server: ~700 kB, with custom node packs several MB) but a
//! check needs only a small part of it: per class the inputs (kind, enum options, default,
//! min/max, a few flags), the output types and `output_node`. [`Schema::parse`] deserializes into
//! those typed fields and skips the rest (tooltips, descriptions, ...) without building a
//! `Value` tree, which keeps `verify` with a cached schema a few milliseconds.
//!
//! Where the schema comes from (see [`load`]):
//! - `--object-info FILE`: that file.
//! - `--server URL`: `GET URL/object_info`; if the server cannot be reached, the copy cached by
//!   `comfyctl schema pull --url URL` is used instead, with a warning.
//! - `--server URL --offline`: only the cached copy, never the network (CI, no VPN, ...).

use crate::cli::{SchemaArgs, SchemaCommand, SchemaSource};
use crate::diagnostic::Diagnostic;
use crate::error::{exit, Error, Result};
use crate::report::Reporter;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A server's node schema: every class it can run.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub classes: HashMap<String, NodeDef>,
}

/// One node class, reduced to what conversion and checks need.
#[derive(Debug, Clone, Default)]
pub struct NodeDef {
    pub display_name: Option<String>,
    /// Required then optional inputs, in the server's `input_order`.
    pub inputs: Vec<InputDef>,
    /// Hidden inputs (`prompt`, `unique_id`, ...): filled in by the server, never an error.
    pub hidden: Vec<String>,
    /// Output types (`MODEL`, `IMAGE`, ...; an enum output is `COMBO`).
    pub outputs: Vec<String>,
    pub output_node: bool,
    pub python_module: Option<String>,
}

/// One input of a node class.
#[derive(Debug, Clone, Default)]
pub struct InputDef {
    pub name: String,
    pub required: bool,
    /// `INT`, `FLOAT`, `STRING`, `BOOLEAN`, `COMBO`, or a socket type such as `MODEL`, `*`,
    /// `IMAGE,MASK`.
    pub kind: String,
    /// Enum options for a `COMBO` (legacy `[[...], {...}]` or new `["COMBO", {"options": [...]}]`).
    pub options: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `control_after_generate` as the frontend reads it (JS truthiness), `None` when absent or
    /// null: the frontend then adds a control widget to INT inputs named `seed`/`noise_seed`,
    /// but an explicit `false` switches that off (`control_after_generate ?? isSeedName`).
    pub control_after_generate: Option<bool>,
    pub force_input: bool,
    /// `remote.refresh_button`: the frontend adds a "refresh" button widget that takes a
    /// `widgets_values` slot and is sent (LoadImageOutput).
    pub refresh_button: bool,
    /// `image_upload` / `video_upload` / `audio_upload` / `file_upload`: the frontend adds an
    /// upload button widget that takes a `widgets_values` slot.
    pub upload: bool,
    pub dynamic_prompts: bool,
    pub multiselect: bool,
}

impl InputDef {
    /// Whether the frontend shows this input as a widget (and so reads it from `widgets_values`).
    pub fn is_widget(&self) -> bool {
        !self.force_input
            && matches!(
                self.kind.as_str(),
                "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO" | "LOAD_3D" | "LOAD_3D_ANIMATION"
            )
    }
}

impl NodeDef {
    pub fn input(&self, name: &str) -> Option<&InputDef> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Deserialize)]
struct RawClass {
    #[serde(default)]
    input: RawInputs,
    #[serde(default)]
    input_order: Option<Value>,
    #[serde(default)]
    output: Vec<RawOutput>,
    // Loosely typed on purpose: one custom node with an odd field must not make the whole
    // schema unreadable.
    #[serde(default)]
    display_name: Option<Value>,
    #[serde(default)]
    output_node: Option<Value>,
    #[serde(default)]
    python_module: Option<Value>,
}

#[derive(Deserialize, Default)]
struct RawInputs {
    #[serde(default)]
    required: Option<SpecMap>,
    #[serde(default)]
    optional: Option<SpecMap>,
    #[serde(default)]
    hidden: Option<HashMap<String, IgnoredValue>>,
}

/// Accepts and discards any JSON value (used for hidden inputs' types).
struct IgnoredValue;
impl<'de> Deserialize<'de> for IgnoredValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| IgnoredValue)
    }
}

/// An output type: a string, or a list of options (an enum output, typed `COMBO`).
struct RawOutput(String);
impl<'de> Deserialize<'de> for RawOutput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(RawOutput(match v {
            Value::String(s) => s,
            Value::Array(_) => "COMBO".into(),
            _ => "*".into(),
        }))
    }
}

/// The top level: class name → definition, each reduced to a [`NodeDef`] as soon as it is read
/// (no intermediate map of raw classes to move around).
struct Classes(HashMap<String, NodeDef>);
impl<'de> Deserialize<'de> for Classes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Classes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of node classes")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Classes, A::Error> {
                let mut out = HashMap::with_capacity(m.size_hint().unwrap_or(1024));
                while let Some(k) = m.next_key::<String>()? {
                    let c: RawClass = m.next_value()?;
                    out.insert(k, NodeDef::from_raw(c));
                }
                Ok(Classes(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Input specs in file order.
struct SpecMap(Vec<(String, InputDef)>);
impl<'de> Deserialize<'de> for SpecMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpecMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of input specs")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<SpecMap, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let spec: RawSpec = m.next_value()?;
                    let mut def = spec.0;
                    def.name = k.clone();
                    out.push((k, def));
                }
                Ok(SpecMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `["TYPE"]`, `["TYPE", {opts}]`, `[[options...], {opts}]`, `["COMBO", {"options": [...]}]`.
struct RawSpec(InputDef);
impl<'de> Deserialize<'de> for RawSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an input spec [type, {options}]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<RawSpec, E> {
                Ok(RawSpec(InputDef {
                    kind: s.to_string(),
                    ..Default::default()
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<RawSpec, A::Error> {
                let mut def = InputDef::default();
                let first: Option<Value> = s.next_element()?;
                match first {
                    Some(Value::String(t)) => def.kind = t,
                    Some(Value::Array(opts)) => {
                        def.kind = "COMBO".into();
                        def.options = Some(opts);
                    }
                    _ => def.kind = "*".into(),
                }
                if let Some(MaybeOpts(Some(o))) = s.next_element::<MaybeOpts>()? {
                    def.default = o.default;
                    def.min = o.min.as_ref().and_then(num);
                    def.max = o.max.as_ref().and_then(num);
                    def.control_after_generate = o.control_after_generate.0;
                    def.refresh_button = o
                        .remote
                        .as_ref()
                        .is_some_and(|r| r.get("refresh_button").is_some_and(truthy));
                    def.force_input = o.force_input.0;
                    def.upload =
                        o.image_upload.0 || o.video_upload.0 || o.audio_upload.0 || o.file_upload.0;
                    def.dynamic_prompts = o.dynamic_prompts.0;
                    def.multiselect = o.multiselect.0;
                    if def.options.is_none() {
                        if let Some(Value::Array(opts)) = o.options {
                            def.options = Some(opts);
                        }
                    }
                }
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawSpec(def))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
struct RawOpts {
    default: Option<Value>,
    min: Option<Value>,
    max: Option<Value>,
    #[serde(default)]
    control_after_generate: JsFlag,
    #[serde(rename = "forceInput", default)]
    force_input: Flag,
    #[serde(default)]
    image_upload: Flag,
    #[serde(default)]
    video_upload: Flag,
    #[serde(default)]
    audio_upload: Flag,
    #[serde(default)]
    file_upload: Flag,
    #[serde(rename = "dynamicPrompts", default)]
    dynamic_prompts: Flag,
    #[serde(default)]
    multiselect: Flag,
    options: Option<Value>,
    remote: Option<Value>,
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// An option the frontend tests with `??` and then by truthiness: absent or `null` is `None`.
#[derive(Default, Clone, Copy)]
struct JsFlag(Option<bool>);
impl<'de> Deserialize<'de> for JsFlag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(JsFlag(match v {
            Value::Null => None,
            v => Some(truthy(&v)),
        }))
    }
}

/// A boolean option: `true` is true, anything else (other types included) is false. Read
/// without building a `Value`, which matters for parse time on a large schema.
#[derive(Default, Clone, Copy)]
struct Flag(bool);
impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> std::result::Result<Flag, E> {
                Ok(Flag(b))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Flag, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<Flag, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag(false))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Flag, E> {
                Ok(Flag(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Flag, E> {
                Ok(Flag(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// The options object of an input spec; anything else in that place is ignored.
struct MaybeOpts(Option<RawOpts>);
impl<'de> Deserialize<'de> for MaybeOpts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeOpts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("input options")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                m: A,
            ) -> std::result::Result<MaybeOpts, A::Error> {
                RawOpts::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(|o| MaybeOpts(Some(o)))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<MaybeOpts, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeOpts(None))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<MaybeOpts, E> {
                Ok(MaybeOpts(None))
            }
        }
        d.deserialize_any(V)
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

impl Schema {
    /// Parses an `/object_info` document. `source` names it in error messages.
    pub fn parse(text: &str, source: &str) -> Result<Schema> {
        let Classes(classes) = serde_json::from_str(text).map_err(|e| {
            Error::Usage(format!(
                "{source}: not a ComfyUI /object_info document ({e}); save it with: curl http://HOST:8188/object_info > object_info.json"
            ))
        })?;
        Ok(Schema { classes })
    }

    pub fn get(&self, class: &str) -> Option<&NodeDef> {
        self.classes.get(class)
    }

    /// Class names, sorted (for suggestions that are stable from run to run).
    pub fn class_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.classes.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

impl NodeDef {
    fn from_raw(c: RawClass) -> NodeDef {
        let order_of = |key: &str| -> Vec<&str> {
            c.input_order
                .as_ref()
                .and_then(|o| o[key].as_array())
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        let (req_order, opt_order) = (order_of("required"), order_of("optional"));
        let mut inputs = Vec::new();
        for (specs, order, required) in [
            (c.input.required, &req_order, true),
            (c.input.optional, &opt_order, false),
        ] {
            let Some(SpecMap(mut specs)) = specs else {
                continue;
            };
            // `input_order` is authoritative when present: the map order may have been
            // shuffled by whatever saved the file.
            if !order.is_empty() {
                let mut rest: Vec<Option<(String, InputDef)>> =
                    specs.into_iter().map(Some).collect();
                let mut sorted = Vec::with_capacity(rest.len());
                for name in order {
                    if let Some(p) = rest
                        .iter()
                        .position(|x| x.as_ref().is_some_and(|(n, _)| n == name))
                    {
                        sorted.extend(rest[p].take());
                    }
                }
                sorted.extend(rest.into_iter().flatten());
                specs = sorted;
            }
            for (_, mut def) in specs {
                def.required = required;
                inputs.push(def);
            }
        }
        NodeDef {
            display_name: c.display_name.and_then(|v| v.as_str().map(String::from)),
            inputs,
            hidden: c
                .input
                .hidden
                .map(|h| {
                    let mut v: Vec<String> = h.into_keys().collect();
                    v.sort_unstable();
                    v
                })
                .unwrap_or_default(),
            outputs: c.output.into_iter().map(|o| o.0).collect(),
            output_node: c.output_node.and_then(|v| v.as_bool()) == Some(true),
            python_module: c.python_module.and_then(|v| v.as_str().map(String::from)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and the cache

/// The cache directory: `$COMFYCTL_CACHE_DIR/schemas`, else `<user cache dir>/comfyctl/schemas`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("COMFYCTL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("schemas"));
    }
    dirs::cache_dir()
        .map(|d| d.join("comfyctl").join("schemas"))
        .ok_or_else(|| {
            Error::Usage(
                "no user cache directory on this system; set COMFYCTL_CACHE_DIR to a writable directory"
                    .into(),
            )
        })
}

/// The cache key of a server: its URL without scheme or trailing slash, every character that is
/// not alphanumeric, `.` or `-` replaced by `_` (`http://127.0.0.1:8188/` → `127.0.0.1_8188`).
/// The scheme is dropped so that `http://host` and `https://host` share one entry.
pub fn cache_key(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    let u = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .unwrap_or(u);
    u.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Path of the cached schema for a server URL.
pub fn cache_path(url: &str) -> Result<PathBuf> {
    Ok(cache_dir()?.join(format!("{}.json", cache_key(url))))
}

pub fn read_file(path: &Path) -> Result<Schema> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(name.clone(), e))?;
    Schema::parse(&text, &name)
}

/// Loads a schema from `--object-info`, `--server` (falling back to the cache when the server is
/// unreachable) or, with `--offline`, the cache only. `Ok(None)` when no source was given.
pub fn load(src: &SchemaSource, reporter: &Reporter) -> Result<Option<Schema>> {
    if let Some(p) = &src.object_info {
        return read_file(p).map(Some);
    }
    let Some(url) = &src.server else {
        if src.offline {
            return Err(Error::Usage(
                "--offline needs --server URL to know which cached schema to use (see 'comfyctl schema list')".into(),
            ));
        }
        return Ok(None);
    };
    let cached = cache_path(url)?;
    if src.offline {
        if !cached.exists() {
            return Err(Error::Usage(format!(
                "no cached schema for {url} (looked for {}); run 'comfyctl schema pull --url {url}' while the server is reachable",
                cached.display()
            )));
        }
        reporter.debug(1, format!("using cached schema {}", cached.display()));
        return read_file(&cached).map(Some);
    }
    let rt = crate::runtime()?;
    match rt.block_on(fetch_text(url, &src.headers)) {
        Ok(text) => Schema::parse(&text, &format!("{url}/object_info")).map(Some),
        Err(Error::Server(msg)) if cached.exists() => {
            reporter.warn(format!(
                "{msg}; using the cached schema {} instead",
                cached.display()
            ));
            read_file(&cached).map(Some)
        }
        Err(e) => Err(e),
    }
}

/// Fetches and parses `GET URL/object_info` (for callers already inside a runtime, such as
/// `send --preflight`).
pub async fn fetch(url: &str, headers: &[String]) -> Result<Schema> {
    let text = fetch_text(url, headers).await?;
    Schema::parse(&text, &format!("{url}/object_info"))
}

/// For `send --preflight` against a ComfyUI server: fetch its schema and check `nodes`.
/// `Ok(None)` when the server does not serve `/object_info` (answers 404 or something that is not
/// an object_info document), so the caller can skip the check as the default-on preflight should;
/// connection and auth failures are errors, as sending would fail the same way.
pub async fn preflight(
    url: &str,
    headers: &[String],
    nodes: &Map<String, Value>,
    file: &str,
) -> Result<Option<Vec<Diagnostic>>> {
    let text = match fetch_text(url, headers).await {
        Ok(t) => t,
        Err(Error::Server(m)) if m.contains("answered 404") => return Ok(None),
        Err(e) => return Err(e),
    };
    match Schema::parse(&text, &format!("{url}/object_info")) {
        Ok(schema) => Ok(Some(check(&schema, nodes, file))),
        Err(_) => Ok(None),
    }
}

/// `GET URL/object_info` as text. Connection problems and non-2xx answers are
/// [`Error::Server`]; a malformed header is a usage error.
pub async fn fetch_text(url: &str, headers: &[String]) -> Result<String> {
    let base = url.trim_end_matches('/');
    let endpoint = format!("{base}/object_info");
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // A server with many custom node packs builds object_info slowly (seconds).
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Error::Server(format!("cannot create an HTTP client: {e}")))?;
    let mut req = client.get(&endpoint);
    for h in headers {
        let (name, value) = h.split_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "--header '{}' is not 'Name: value'",
                h.split(':').next().unwrap_or("")
            ))
        })?;
        req = req.header(name.trim(), value.trim());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Error::Server(format!("cannot reach {endpoint}: {}", error_chain(&e))))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Auth(format!(
            "{endpoint} answered {status}; pass credentials with --header 'Authorization: ...'"
        )));
    }
    if !status.is_success() {
        return Err(Error::Server(format!(
            "{endpoint} answered {status}; is this a ComfyUI server?"
        )));
    }
    resp.text()
        .await
        .map_err(|e| Error::Server(format!("reading {endpoint}: {}", error_chain(&e))))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        src = c.source();
    }
    s
}

/// The fields of an input's options object that comfyctl reads.
const KEPT_OPTIONS: &[&str] = &[
    "default",
    "min",
    "max",
    "control_after_generate",
    "forceInput",
    "image_upload",
    "video_upload",
    "audio_upload",
    "file_upload",
    "dynamicPrompts",
    "multiselect",
    "options",
    "remote",
];

/// `/object_info` reduced to what comfyctl reads (no tooltips, descriptions, categories), still
/// in `/object_info` syntax so that the cached file also works with `--object-info`. About a
/// third of the size, which is what makes `verify` with a cached schema fast.
pub fn compact_object_info(text: &str, source: &str) -> Result<String> {
    let full: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
        Error::Usage(format!(
            "{source}: not a ComfyUI /object_info document ({e})"
        ))
    })?;
    let mut out = Map::new();
    for (name, class) in full {
        let Value::Object(mut class) = class else {
            continue;
        };
        let mut c = Map::new();
        if let Some(Value::Object(mut input)) = class.remove("input") {
            for sec in ["required", "optional"] {
                if let Some(Value::Object(specs)) = input.get_mut(sec) {
                    for spec in specs.values_mut() {
                        if let Some(Value::Object(opts)) =
                            spec.as_array_mut().and_then(|a| a.get_mut(1))
                        {
                            opts.retain(|k, _| KEPT_OPTIONS.contains(&k.as_str()));
                        }
                    }
                }
            }
            if let Some(Value::Object(hidden)) = input.get_mut("hidden") {
                for v in hidden.values_mut() {
                    *v = Value::from(0);
                }
            }
            c.insert("input".into(), Value::Object(input));
        }
        for key in [
            "input_order",
            "output",
            "display_name",
            "output_node",
            "python_module",
        ] {
            if let Some(v) = class.remove(key) {
                c.insert(key.into(), v);
            }
        }
        out.insert(name, Value::Object(c));
    }
    Ok(serde_json::to_string(&Value::Object(out)).expect("serializable"))
}

/// `comfyctl schema ...`
pub fn cmd(args: &SchemaArgs) -> Result<i32> {
    match &args.command {
        SchemaCommand::Pull { url, headers } => {
            let rt = crate::runtime()?;
            let text = rt.block_on(fetch_text(url, headers))?;
            // Validate before saving so a proxy's HTML error page never lands in the cache.
            let schema = Schema::parse(&text, &format!("{url}/object_info"))?;
            let path = cache_path(url)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(dir.display().to_string(), e))?;
            }
            let compact = compact_object_info(&text, url)?;
            crate::outputs::write_atomic(&path, compact.as_bytes())?;
            let meta = serde_json::json!({"url": url, "classes": schema.classes.len()});
            let _ = std::fs::write(path.with_extension("url"), meta.to_string());
            println!(
                "saved {} node classes from {url} to {}",
                schema.classes.len(),
                path.display()
            );
            Ok(exit::OK)
        }
        SchemaCommand::List => {
            let dir = cache_dir()?;
            println!("cache: {}", dir.display());
            let mut rows = Vec::new();
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.extension().and_then(|x| x.to_str()) != Some("json") {
                        continue;
                    }
                    let url = std::fs::read_to_string(p.with_extension("url"))
                        .ok()
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|v| v["url"].as_str().map(String::from))
                        .unwrap_or_else(|| "(unknown server)".into());
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    rows.push(format!(
                        "{url}\t{}\t{}",
                        crate::report::human_bytes(size),
                        p.display()
                    ));
                }
            }
            rows.sort();
            if rows.is_empty() {
                println!("no cached schemas; run 'comfyctl schema pull --url URL'");
            }
            for r in rows {
                println!("{r}");
            }
            Ok(exit::OK)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

// ---------------------------------------------------------------------------------------------
// Checks

/// Well-known custom node packs, recognized by a class-name prefix or suffix. Only a hint (the
/// fix line says "probably"): it saves a search when a workflow from the internet names a node the
/// worker lacks.
const PACKS: &[(Affix, &str)] = &[
    (Affix::Prefix("VHS_"), "ComfyUI-VideoHelperSuite"),
    (Affix::Suffix(" //Inspire"), "ComfyUI-Inspire-Pack"),
    (Affix::Prefix("easy "), "ComfyUI-Easy-Use"),
    (Affix::Suffix(" (rgthree)"), "rgthree-comfy"),
    (Affix::Suffix("|pysssss"), "ComfyUI-Custom-Scripts"),
    (Affix::Prefix("ttN "), "ComfyUI_tinyterraNodes"),
    (Affix::Prefix("CR "), "ComfyUI_Comfyroll_CustomNodes"),
    (Affix::Suffix(" [Crystools]"), "ComfyUI-Crystools"),
    (Affix::Suffix(" (Efficient)"), "efficiency-nodes-comfyui"),
    (Affix::Suffix(" (mtb)"), "comfy_mtb"),
    (Affix::Suffix(" (JPS)"), "ComfyUI_JPS-Nodes"),
    (Affix::Prefix("Impact"), "ComfyUI-Impact-Pack"),
    (Affix::Prefix("IPAdapter"), "ComfyUI_IPAdapter_plus"),
    (Affix::Prefix("WanVideo"), "ComfyUI-WanVideoWrapper"),
    (Affix::Prefix("ACN_"), "ComfyUI-Advanced-ControlNet"),
    (Affix::Prefix("ADE_"), "ComfyUI-AnimateDiff-Evolved"),
    (Affix::Prefix("Florence2"), "ComfyUI-Florence2"),
    (Affix::Prefix("SUPIR_"), "ComfyUI-SUPIR"),
    (Affix::Prefix("LayerMask: "), "ComfyUI_LayerStyle"),
    (Affix::Prefix("LayerStyle: "), "ComfyUI_LayerStyle"),
    (Affix::Prefix("LayerUtility: "), "ComfyUI_LayerStyle"),
    (Affix::Prefix("LayerColor: "), "ComfyUI_LayerStyle"),
    (Affix::Prefix("ReActor"), "comfyui-reactor-node"),
    (Affix::Prefix("Anything Everywhere"), "cg-use-everywhere"),
    (Affix::Suffix("GGUF"), "ComfyUI-GGUF"),
    (Affix::Suffix(" VFI"), "ComfyUI-Frame-Interpolation"),
    (Affix::Suffix("Preprocessor"), "comfyui_controlnet_aux"),
    (Affix::Suffix("KJ"), "ComfyUI-KJNodes"),
    (Affix::Exact("GetNode"), "ComfyUI-KJNodes"),
    (Affix::Exact("SetNode"), "ComfyUI-KJNodes"),
    (Affix::Exact("FaceDetailer"), "ComfyUI-Impact-Pack"),
    (
        Affix::Exact("UltralyticsDetectorProvider"),
        "ComfyUI-Impact-Pack-Subpack",
    ),
    (Affix::Exact("Image Save"), "was-node-suite-comfyui"),
    (
        Affix::Suffix(" //"),
        "a custom node pack (classes ending in ' //')",
    ),
];

enum Affix {
    Prefix(&'static str),
    Suffix(&'static str),
    Exact(&'static str),
}

/// The custom node pack a class probably comes from, by its name.
pub fn guess_pack(class: &str) -> Option<&'static str> {
    PACKS.iter().find_map(|(a, pack)| {
        let hit = match a {
            Affix::Prefix(p) => class.starts_with(p),
            Affix::Suffix(s) => class.ends_with(s),
            Affix::Exact(e) => class == *e,
        };
        hit.then_some(*pack)
    })
}

/// Inputs the ComfyUI frontend adds to its API export although `/object_info` does not list
/// them (the server ignores them), so they are no reason for an "unknown input" warning.
fn frontend_only_input(class: &str, input: &str) -> bool {
    matches!(
        (class, input),
        (
            "LoadAudio" | "SaveAudio" | "SaveAudioMP3" | "SaveAudioOpus" | "PreviewAudio",
            "audioUI"
        ) | ("PreviewAny", "preview")
            | ("SaveGLB", "image")
            | ("LoadImageOutput", "refresh")
    ) || (class.starts_with("Preview3D") && input == "image")
        || input == "upload"
}

/// LiteGraph's type compatibility (also what ComfyUI's validation accepts): equal, `*` or empty
/// on either side, or comma-separated lists that share a type.
pub fn types_compatible(a: &str, b: &str) -> bool {
    if a == b || a == "*" || b == "*" || a.is_empty() || b.is_empty() {
        return true;
    }
    let (a, b) = (a.to_ascii_uppercase(), b.to_ascii_uppercase());
    a.split(',')
        .map(str::trim)
        .any(|x| b.split(',').map(str::trim).any(|y| x == y))
}

const MODEL_EXTS: &[&str] = &[
    ".safetensors",
    ".ckpt",
    ".pt",
    ".pth",
    ".bin",
    ".gguf",
    ".sft",
    ".onnx",
    ".pt2",
];

/// Whether a combo input selects a model file (its value or options look like file names).
fn is_model_input(name: &str, value: &str, options: &[Value]) -> bool {
    let looks_file = |s: &str| {
        let l = s.to_ascii_lowercase();
        MODEL_EXTS.iter().any(|e| l.ends_with(e))
    };
    looks_file(value)
        || (name.ends_with("_name")
            && (options.is_empty() || options.iter().filter_map(Value::as_str).any(looks_file)))
}

/// Up to `n` options most similar to `needle` (Jaro-Winkler on lowercase, file name without
/// folders also tried), best first.
fn closest<'a>(needle: &str, options: &'a [Value], n: usize) -> Vec<&'a str> {
    let want = needle.to_lowercase();
    let want_base = want.rsplit(['/', '\\']).next().unwrap_or(&want).to_string();
    let mut scored: Vec<(f64, &str)> = options
        .iter()
        .filter_map(Value::as_str)
        .map(|o| {
            let l = o.to_lowercase();
            let base = l.rsplit(['/', '\\']).next().unwrap_or(&l);
            let s = strsim::jaro_winkler(&want, &l).max(strsim::jaro_winkler(&want_base, base));
            (s, o)
        })
        .filter(|(s, _)| *s >= 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, o)| o).collect()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn in_options(v: &Value, options: &[Value]) -> bool {
    options.iter().any(|o| {
        o == v
            || match (o, v) {
                (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
                    *a == b.to_string()
                }
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                _ => false,
            }
    })
}

fn quote_list(v: &[&str]) -> String {
    v.iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Schema-aware diagnostics for an API-format node map: unknown classes, missing and unknown
/// inputs, link type and index errors, enum values (model files above all) and numbers outside
/// the server's limits, and whether anything is an output node.
pub fn check(schema: &Schema, nodes: &Map<String, Value>, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut class_names: Option<Vec<&str>> = None;
    let mut any_output = false;
    let mut any_unknown = false;
    let mut consumed: std::collections::HashSet<String> = Default::default();
    for node in nodes.values() {
        for v in node["inputs"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Some((id, _)) = crate::workflow::as_link(v) {
                consumed.insert(id.to_key());
            }
        }
    }
    for (id, node) in nodes {
        let Some(class) = node["class_type"].as_str() else {
            continue; // a structural error, reported by the structural checks
        };
        let title = node["_meta"]["title"].as_str();
        let at = |d: Diagnostic| d.file(file).node(id).title(title).class(class);
        let Some(def) = schema.get(class) else {
            any_unknown = true;
            let names = class_names.get_or_insert_with(|| schema.class_names());
            let suggestion = crate::verify::close_match(class, names);
            let fix = match (guess_pack(class), suggestion) {
                (_, Some(s)) if s.eq_ignore_ascii_case(class) || strsim::levenshtein(s, class) <= 2 => {
                    format!("did you mean '{s}'?")
                }
                (Some(pack), _) => format!(
                    "install the custom node pack that provides it (probably {pack}) on the server, e.g. with ComfyUI-Manager, and restart it"
                ),
                (None, Some(s)) => format!(
                    "did you mean '{s}'? otherwise install the custom node pack that provides it on the server"
                ),
                (None, None) => {
                    "install the custom node pack that provides it on the server (ComfyUI-Manager: 'Install Missing Custom Nodes')".into()
                }
            };
            out.push(
                at(Diagnostic::error(
                    "unknown_class",
                    format!("the server has no node class '{class}'"),
                ))
                .fix(fix),
            );
            continue;
        };
        any_output |= def.output_node;
        let empty = Map::new();
        let inputs = node["inputs"].as_object().unwrap_or(&empty);
        for inp in &def.inputs {
            let Some(v) = inputs.get(&inp.name) else {
                if inp.required {
                    let fix = if inp.is_widget() {
                        match &inp.default {
                            Some(d) => format!(
                                "set it, e.g. --set {id}.{}={} (the server's default)",
                                inp.name,
                                value_text(d)
                            ),
                            None => format!("add a value for '{}'", inp.name),
                        }
                    } else {
                        format!("connect a node that outputs {}", inp.kind)
                    };
                    out.push(
                        at(Diagnostic::error(
                            "missing_input",
                            format!("required input '{}' ({}) is missing", inp.name, inp.kind),
                        ))
                        .input(&inp.name)
                        .fix(fix),
                    );
                }
                continue;
            };
            if let Some((src, slot)) = crate::workflow::as_link(v) {
                check_link(nodes, schema, &src.to_key(), slot, inp, &mut out, &at);
            } else {
                check_value(id, v, inp, &mut out, &at);
            }
        }
        for (name, _) in inputs {
            if def.input(name).is_none()
                && !def.hidden.iter().any(|h| h == name)
                && !frontend_only_input(class, name)
            {
                let names: Vec<&str> = def.inputs.iter().map(|i| i.name.as_str()).collect();
                let fix = match crate::verify::close_match(name, &names) {
                    Some(s) => format!("did you mean '{s}'? the server ignores unknown inputs"),
                    None => format!(
                        "the server ignores it; {class} takes: {}",
                        if names.is_empty() {
                            "no inputs".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                };
                out.push(
                    at(Diagnostic::warning(
                        "unknown_input",
                        format!("{class} has no input '{name}' on this server"),
                    ))
                    .input(name)
                    .fix(fix),
                );
            }
        }
        if !def.output_node && !consumed.contains(id.as_str()) {
            out.push(
                at(Diagnostic::warning(
                    "unused_node",
                    "its outputs are not connected to anything and it is not an output node, so ComfyUI will not run it",
                ))
                .fix("connect it, or remove it"),
            );
        }
    }
    if !any_output && !any_unknown && !nodes.is_empty() {
        out.push(
            Diagnostic::error(
                "no_output_node",
                "no node is an output node on this server, so ComfyUI would refuse the prompt (\"Prompt has no outputs\")",
            )
            .file(file)
            .fix("add a SaveImage / SaveVideo / PreviewImage (or another output) node"),
        );
    }
    out
}

fn check_link(
    nodes: &Map<String, Value>,
    schema: &Schema,
    src: &str,
    slot: u64,
    inp: &InputDef,
    out: &mut Vec<Diagnostic>,
    at: &dyn Fn(Diagnostic) -> Diagnostic,
) {
    let Some(pclass) = nodes.get(src).and_then(|n| n["class_type"].as_str()) else {
        return; // dangling: the structural checks report it
    };
    let Some(pdef) = schema.get(pclass) else {
        return; // unknown producer: reported on that node
    };
    let Some(out_type) = pdef.outputs.get(slot as usize) else {
        out.push(
            at(Diagnostic::error(
                "bad_output_index",
                format!(
                    "links to output {slot} of node {src} ({pclass}), which has {} output(s){}",
                    pdef.outputs.len(),
                    if pdef.outputs.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", pdef.outputs.join(", "))
                    }
                ),
            ))
            .input(&inp.name)
            .fix(format!(
                "link to an output index between 0 and {}",
                pdef.outputs.len().saturating_sub(1)
            )),
        );
        return;
    };
    if !types_compatible(out_type, &inp.kind) {
        let alt = pdef
            .outputs
            .iter()
            .position(|t| types_compatible(t, &inp.kind) && t != "*");
        let fix = match alt {
            Some(k) => format!(
                "use output {k} of node {src} ([\"{src}\", {k}]), which is {}",
                pdef.outputs[k]
            ),
            None => format!("connect a node that outputs {}", inp.kind),
        };
        out.push(
            at(Diagnostic::error(
                "type_mismatch",
                format!(
                    "gets {out_type} from node {src} ({pclass}) output {slot}, but expects {}",
                    inp.kind
                ),
            ))
            .input(&inp.name)
            .fix(fix),
        );
    }
}

fn check_value(
    id: &str,
    v: &Value,
    inp: &InputDef,
    out: &mut Vec<Diagnostic>,
    at: &dyn Fn(Diagnostic) -> Diagnostic,
) {
    if v.is_array() || v.is_object() {
        return; // `{"__value__": [...]}`, lists for multiselect: not checked
    }
    match inp.kind.as_str() {
        "COMBO" => {
            let Some(options) = &inp.options else { return };
            if inp.multiselect || in_options(v, options) {
                return;
            }
            let text = value_text(v);
            let model = is_model_input(&inp.name, &text, options);
            let near = closest(&text, options, 3);
            let what = if model { "model file" } else { "value" };
            let message = if options.is_empty() {
                format!(
                    "{what} '{text}' is not available: the server's list for '{}' is empty",
                    inp.name
                )
            } else {
                format!(
                    "{what} '{text}' is not in the server's list ({} option(s))",
                    options.len()
                )
            };
            let fix = if inp.upload {
                format!(
                    "the server has no input file '{text}': 'comfyctl send --image {id}=PATH' uploads one{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!(" (closest the server has: {})", quote_list(&near))
                    }
                )
            } else if !near.is_empty() {
                format!("closest the server has: {}", quote_list(&near))
            } else if model {
                let some: Vec<&str> = options.iter().filter_map(Value::as_str).take(5).collect();
                format!(
                    "put '{text}' in the server's models folder (e.g. ComfyUI/models/...){}",
                    if some.is_empty() {
                        String::new()
                    } else {
                        format!(", or use one the server has: {}", quote_list(&some))
                    }
                )
            } else {
                let some: Vec<&str> = options.iter().filter_map(Value::as_str).take(8).collect();
                format!("valid values include: {}", quote_list(&some))
            };
            out.push(
                at(Diagnostic::error("value_not_in_list", message))
                    .input(&inp.name)
                    .fix(fix),
            );
        }
        "INT" | "FLOAT" => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(n) = n else {
                out.push(
                    at(Diagnostic::error(
                        "bad_value",
                        format!(
                            "expects a number ({}), got {}",
                            inp.kind,
                            crate::workflow::json_kind(v)
                        ),
                    ))
                    .input(&inp.name)
                    .fix(format!("--set {id}.{}=NUMBER", inp.name)),
                );
                return;
            };
            let low = inp.min.filter(|m| n < *m);
            let high = inp.max.filter(|m| n > *m);
            if let Some(bound) = low.or(high) {
                let side = if low.is_some() {
                    "below the minimum"
                } else {
                    "above the maximum"
                };
                out.push(
                    at(Diagnostic::error(
                        "value_out_of_range",
                        format!("{} is {side} {bound} allowed by the server", value_text(v)),
                    ))
                    .input(&inp.name)
                    .fix(format!(
                        "use a value between {} and {}",
                        inp.min.map_or("-inf".into(), |m| m.to_string()),
                        inp.max.map_or("inf".into(), |m| m.to_string())
                    )),
                );
            }
        }
        "STRING" | "BOOLEAN" | "*" | "LOAD_3D" | "LOAD_3D_ANIMATION" => {}
        socket => out.push(
            at(Diagnostic::warning(
                "literal_for_link",
                format!(
                    "expects a link from a node that outputs {socket}, but has a literal value"
                ),
            ))
            .input(&inp.name)
            .fix(format!("connect a node that outputs {socket}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "A": {"input": {"required": {
          "model": ["MODEL", {"tooltip": "x"}],
          "image": ["IMAGE"],
          "mode": [["one", "two"], {"default": "two"}],
          "dim": ["COMBO", {"options": ["x", "-x"], "multiselect": false}],
          "seed": ["INT", {"default": 0, "min": 0, "max": 10, "control_after_generate": true}],
          "forced": ["INT", {"forceInput": true}]
        },
        "optional": {"extra": ["FLOAT", {"min": -1.5, "max": 1.5}]},
        "hidden": {"prompt": "PROMPT"}},
        "input_order": {"required": ["image", "model", "mode", "dim", "seed", "forced"], "optional": ["extra"]},
        "output": ["MODEL", ["a", "b"]], "output_node": true, "display_name": "Node A",
        "description": "ignored", "output_tooltips": ["ignored"]}
    }"#;

    #[test]
    fn parses_both_input_spec_syntaxes_in_input_order() {
        let s = Schema::parse(DOC, "test").unwrap();
        let a = s.get("A").unwrap();
        let names: Vec<&str> = a.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["image", "model", "mode", "dim", "seed", "forced", "extra"]
        );
        let mode = a.input("mode").unwrap();
        assert_eq!(mode.kind, "COMBO");
        assert_eq!(mode.options.as_ref().unwrap().len(), 2);
        assert_eq!(mode.default, Some(Value::from("two")));
        let dim = a.input("dim").unwrap();
        assert_eq!(dim.kind, "COMBO");
        assert_eq!(dim.options.as_ref().unwrap()[1], "-x");
        let seed = a.input("seed").unwrap();
        assert!(seed.control_after_generate == Some(true) && seed.is_widget());
        assert_eq!(seed.max, Some(10.0));
        assert!(!a.input("forced").unwrap().is_widget());
        assert!(!a.input("extra").unwrap().required);
        assert_eq!(a.hidden, ["prompt"]);
        assert_eq!(a.outputs, ["MODEL", "COMBO"]);
        assert!(a.output_node);
        assert_eq!(a.display_name.as_deref(), Some("Node A"));
    }

    #[test]
    fn odd_custom_nodes_do_not_break_the_schema() {
        let doc = r#"{
          "Odd": {"input": {"required": {"a": ["INT", "not an object"], "b": ["STRING", null],
                   "c": ["FLOAT", {"forceInput": "yes", "options": "x", "min": "low"}]}},
                  "input_order": "weird", "display_name": 5, "output_node": "true", "output": [["x"]]},
          "Fine": {"input": {}, "output": ["IMAGE"]}
        }"#;
        let s = Schema::parse(doc, "test").unwrap();
        let odd = s.get("Odd").unwrap();
        assert_eq!(odd.inputs.len(), 3);
        assert!(odd.input("c").unwrap().is_widget());
        assert_eq!(odd.outputs, ["COMBO"]);
        assert!(!odd.output_node);
        assert_eq!(s.get("Fine").unwrap().outputs, ["IMAGE"]);
    }

    #[test]
    fn compact_form_parses_to_the_same_schema() {
        let compact = compact_object_info(DOC, "test").unwrap();
        assert!(!compact.contains("tooltip") && !compact.contains("ignored"));
        let (a, b) = (
            Schema::parse(DOC, "full").unwrap(),
            Schema::parse(&compact, "compact").unwrap(),
        );
        assert_eq!(format!("{:?}", a.classes), format!("{:?}", b.classes));
    }

    #[test]
    fn rejects_what_is_not_object_info() {
        let e = Schema::parse("<html>login</html>", "http://x/object_info").unwrap_err();
        assert!(e
            .to_string()
            .contains("not a ComfyUI /object_info document"));
    }

    #[test]
    fn type_compatibility_follows_litegraph() {
        assert!(types_compatible("MODEL", "MODEL"));
        assert!(types_compatible("*", "CLIP"));
        assert!(types_compatible("IMAGE", ""));
        assert!(types_compatible("IMAGE,MASK", "mask"));
        assert!(!types_compatible("MODEL", "CLIP"));
        assert!(!types_compatible("IMAGE,MASK", "LATENT"));
    }

    #[test]
    fn guesses_packs_from_class_names() {
        assert_eq!(
            guess_pack("VHS_VideoCombine"),
            Some("ComfyUI-VideoHelperSuite")
        );
        assert_eq!(
            guess_pack("LoadDiffusionModelShared //Inspire"),
            Some("ComfyUI-Inspire-Pack")
        );
        assert_eq!(guess_pack("easy imageSave"), Some("ComfyUI-Easy-Use"));
        assert_eq!(guess_pack("KSampler"), None);
    }

    #[test]
    fn cache_key_is_a_safe_file_name() {
        assert_eq!(cache_key("http://127.0.0.1:8188/"), "127.0.0.1_8188");
        assert_eq!(
            cache_key("https://pod-1.proxy.runpod.net"),
            "pod-1.proxy.runpod.net"
        );
        assert_eq!(cache_key("http://h/../x"), "h_.._x");
    }

    #[test]
    fn closest_prefers_same_file_name() {
        let opts = vec![
            Value::from("SD1.5/v1-5-pruned-emaonly.safetensors"),
            Value::from("sdxl/sd_xl_base_1.0.safetensors"),
        ];
        assert_eq!(
            closest("sd_xl_base_1.0.safetensors", &opts, 1),
            ["sdxl/sd_xl_base_1.0.safetensors"]
        );
    }
}
