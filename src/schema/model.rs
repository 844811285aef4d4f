//! The typed node schema: per class the inputs (kind, enum options, default, min/max, a few
//! flags), the output types and `output_node`. [`Schema::parse`] deserializes `/object_info`
//! into those fields and skips the rest (tooltips, descriptions, ...) without building a
//! `Value` tree, which keeps `verify` with a cached schema a few milliseconds.

use crate::error::{Error, Result};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

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
