//! Node schemas (ComfyUI's `/object_info`): the typed model ([`model`]), where a schema comes
//! from and the user cache ([`cache`]), the compact cached form ([`compact`]), and schema-aware
//! checks ([`check`]). The `comfyctl schema` subcommand lives in `commands/schema.rs`.

pub mod cache;
pub mod check;
pub mod compact;
pub mod model;

pub use cache::{cache_dir, cache_key, cache_path, cached, fetch, fetch_text, load, read_file};
pub use check::{check, guess_pack, types_compatible};
pub use compact::compact_object_info;
pub use model::{InputDef, NodeDef, Schema};

#[cfg(test)]
mod tests {
    use super::check::closest;
    use super::*;
    use serde_json::Value;

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
