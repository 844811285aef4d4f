//! `/object_info` reduced to what comfyctl reads (no tooltips, descriptions, categories), still
//! in `/object_info` syntax so that the cached file also works with `--object-info`.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

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
