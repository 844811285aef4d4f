//! Schema-aware checks of a workflow: unknown classes (with the pack that probably provides
//! them), unknown or missing inputs, values outside a list or range, links between types that
//! do not fit. Pure functions over the schema and the node map.

use super::model::{InputDef, Schema};
use crate::diagnostic::Diagnostic;
use serde_json::{Map, Value};

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
pub(crate) fn closest<'a>(needle: &str, options: &'a [Value], n: usize) -> Vec<&'a str> {
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
            let suggestion = crate::suggest::close_match(class, names);
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
                let fix = match crate::suggest::close_match(name, &names) {
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
