//! Properties of structural normalization, over generated graphs (proptest) and the shipped
//! workflows: nothing lost, isomorphic, idempotent, invariant under relabeling and reordering,
//! independent of literal values, and byte-identical across runs.

use comfyctl::normalize::{normalize, NameTable, Normalized};
use comfyctl::verify::relabel;
use comfyctl::workflow::as_link;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const CLASSES: &[&str] = &[
    "KSampler",
    "CLIPTextEncode",
    "LoadImage",
    "VAEDecode",
    "SaveImage",
    "SaveAnimatedWEBP",
    "ImageBatch",
    "UNETLoader",
    "ClipTextEncode", // folds to the same snake case as the table's CLIPTextEncode: collisions
    "Custom Node //Pack",
];
const INPUTS: &[&str] = &[
    "model", "clip", "image", "samples", "positive", "negative", "text", "seed",
];

/// A generated node: class index, literal inputs (name idx, value), links (name idx, source offset, slot).
type GenNode = (usize, Vec<(usize, i64)>, Vec<(usize, usize, u64)>);

fn build(nodes: &[GenNode]) -> Map<String, Value> {
    let mut m = Map::new();
    for (i, (class, lits, links)) in nodes.iter().enumerate() {
        let mut inputs = Map::new();
        for &(name, v) in lits {
            let key = INPUTS[name % INPUTS.len()];
            let val = if key == "text" {
                json!(format!("prompt {v}"))
            } else {
                json!(v)
            };
            inputs.insert(key.to_string(), val);
        }
        if i > 0 {
            for (k, &(name, src, slot)) in links.iter().enumerate() {
                let src = src % i; // links only to earlier nodes: a DAG
                inputs.insert(
                    format!("{}_{k}", INPUTS[name % INPUTS.len()]),
                    json!([src.to_string(), slot]),
                );
            }
        }
        m.insert(
            i.to_string(),
            json!({"class_type": CLASSES[class % CLASSES.len()], "inputs": inputs, "_meta": {"title": format!("t{}", class % 3)}}),
        );
    }
    m
}

fn graphs() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            0..CLASSES.len(),
            prop::collection::vec((0..INPUTS.len(), -3i64..3), 0..3),
            prop::collection::vec((0..INPUTS.len(), 0..64usize, 0..3u64), 0..3),
        ),
        1..30,
    )
    .prop_map(|n| build(&n))
}

fn norm(m: &Map<String, Value>) -> Normalized {
    normalize(m, "gen", &NameTable::builtin()).expect("generated graphs are valid")
}

fn text(m: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(m).unwrap()
}

/// Replaces every literal value by null: what is left is the structure.
fn skeleton(m: &Map<String, Value>) -> Map<String, Value> {
    let mut m = m.clone();
    for node in m.values_mut() {
        if let Some(ins) = node["inputs"].as_object_mut() {
            for v in ins.values_mut() {
                if as_link(v).is_none() {
                    *v = Value::Null;
                }
            }
        }
        node["_meta"] = Value::Null;
    }
    m
}

/// Few classes, few inputs, few values: lots of structurally identical twins and shared nodes,
/// the hard case for tie-breaking.
fn twin_heavy_graphs() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            0..3usize,
            prop::collection::vec((0..2usize, 0i64..2), 0..2),
            prop::collection::vec((0..2usize, 0..64usize, 0..1u64), 0..3),
        ),
        1..25,
    )
    .prop_map(|n| build(&n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn twins_do_not_break_invariance(w in twin_heavy_graphs(), seed in any::<u64>()) {
        let base = norm(&w);
        prop_assert_eq!(text(&norm(&relabel(&w, seed)).nodes), text(&base.nodes));
        prop_assert_eq!(text(&norm(&base.nodes).nodes), text(&base.nodes));
    }

    #[test]
    fn nothing_lost_and_isomorphic(w in graphs()) {
        let n = norm(&w);
        prop_assert_eq!(n.nodes.len(), w.len());
        prop_assert_eq!(n.map.len(), w.len());
        let fwd: HashMap<&str, &str> = n.map.iter().map(|(o, n)| (o.as_str(), n.as_str())).collect();
        let mut targets: Vec<&str> = fwd.values().copied().collect();
        targets.sort();
        targets.dedup();
        prop_assert_eq!(targets.len(), w.len(), "renaming is a bijection");
        for (old, node) in &w {
            let new = &n.nodes[fwd[old.as_str()]];
            prop_assert_eq!(&new["class_type"], &node["class_type"]);
            prop_assert_eq!(&new["_meta"], &node["_meta"]);
            let (a, b) = (node["inputs"].as_object().unwrap(), new["inputs"].as_object().unwrap());
            prop_assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
            for (k, v) in a {
                match as_link(v) {
                    Some((src, slot)) => {
                        prop_assert_eq!(&b[k], &json!([fwd[src.to_key().as_str()], slot]));
                    }
                    None => prop_assert_eq!(&b[k], v),
                }
            }
        }
    }

    #[test]
    fn idempotent(w in graphs()) {
        let once = norm(&w);
        let twice = norm(&once.nodes);
        prop_assert_eq!(text(&twice.nodes), text(&once.nodes));
        prop_assert!(twice.map.iter().all(|(o, n)| o == n));
    }

    #[test]
    fn invariant_under_relabeling_and_order(w in graphs(), seed in any::<u64>()) {
        let base = text(&norm(&w).nodes);
        // random hex IDs + shuffled order
        prop_assert_eq!(text(&norm(&relabel(&w, seed)).nodes), base.clone());
        // integer-like IDs in reverse order
        let rev: Map<String, Value> = relabel(&w, seed ^ 1).into_iter().rev().collect();
        prop_assert_eq!(text(&norm(&rev).nodes), base.clone());
        // links written with integer IDs
        let ints = integer_ids(&w);
        prop_assert_eq!(text(&norm(&ints).nodes), base);
    }

    #[test]
    fn literal_values_do_not_change_ids(w in graphs(), bump in 1i64..1000) {
        let mut changed = w.clone();
        for node in changed.values_mut() {
            if let Some(ins) = node["inputs"].as_object_mut() {
                for (k, v) in ins.iter_mut() {
                    if as_link(v).is_none() {
                        *v = if k == "text" { json!(format!("other prompt {bump}")) } else { json!(bump) };
                    }
                }
            }
        }
        let (a, b) = (norm(&w), norm(&changed));
        if a.literal_ties.is_empty() && b.literal_ties.is_empty() {
            prop_assert_eq!(&a.map, &b.map);
        }
        prop_assert_eq!(skeleton(&a.nodes), skeleton(&b.nodes));
    }

    #[test]
    fn byte_identical_across_runs(w in graphs()) {
        prop_assert_eq!(text(&norm(&w).nodes), text(&norm(&w.clone()).nodes));
    }
}

/// Renames nodes to "100", "101", ... and writes links with integer IDs.
fn integer_ids(w: &Map<String, Value>) -> Map<String, Value> {
    let ids: HashMap<&str, u64> = w
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), 100 + i as u64))
        .collect();
    w.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            for iv in v["inputs"].as_object_mut().unwrap().values_mut() {
                if let Some((src, _)) = as_link(iv) {
                    iv[0] = json!(ids[src.to_key().as_str()]);
                }
            }
            (ids[k.as_str()].to_string(), v)
        })
        .collect()
}

/// The original model-caching document's example, with its exact IDs.
#[test]
fn wan_example_gets_the_documented_names() {
    let w: Value = serde_json::from_str(include_str!("../workflows/wan_i2v.json")).unwrap();
    let n = norm(w.as_object().unwrap());
    let got: HashMap<&str, &str> = n
        .map
        .iter()
        .map(|(o, n)| (o.as_str(), n.as_str()))
        .collect();
    let expected = [
        ("3", "ksampler_1"),
        ("6", "clip_text_encode"),
        ("7", "clip_text_encode_2"),
        ("8", "vae_decode_1"),
        ("28", "save_webp_1"),
        ("38", "clip_loader_1"),
        ("39", "vae_loader_1"),
        ("49", "clip_vision_loader_1"),
        ("50", "wan_i2v_1"),
        ("51", "clip_vision_encode_1"),
        ("52", "load_image_1"),
        ("54", "model_sampling_1"),
        ("55", "model_loader_1"),
    ];
    assert_eq!(got.len(), expected.len());
    for (old, new) in expected {
        assert_eq!(got[old], new, "node {old}");
    }
    // The shipped normalized form is exactly what normalize produces.
    let shipped = include_str!("../workflows/wan_i2v.normalized.json");
    let mut out = serde_json::to_string_pretty(&Value::Object(n.nodes)).unwrap();
    out.push('\n');
    assert_eq!(out, shipped);
}

/// The old normalizer lost a node whenever a type appeared twice; comfyctl never does.
#[test]
fn duplicate_types_are_all_kept() {
    let w = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "red.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "blue.png"}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["3", 0]}},
    });
    let n = norm(w.as_object().unwrap());
    assert_eq!(n.nodes.len(), 4);
    assert_eq!(n.renamed("1"), Some("load_image_1"));
    assert_eq!(n.renamed("2"), Some("load_image_2"));
    assert_eq!(
        n.nodes["image_batch_1"]["inputs"]["image2"],
        json!(["load_image_2", 0])
    );
}

#[test]
fn collisions_are_resolved_deterministically() {
    let w = json!({
        "a": {"class_type": "CLIPTextEncode", "inputs": {"text": "x"}},
        "b": {"class_type": "CLIPTextEncode", "inputs": {"text": "y"}},
        "c": {"class_type": "ClipTextEncode", "inputs": {"text": "z"}},
        "d": {"class_type": "ClipTextEncode", "inputs": {"text": "w"}},
        "s": {"class_type": "Sink", "inputs": {"p": ["a", 0], "q": ["b", 0], "r": ["c", 0], "t": ["d", 0]}},
    });
    let n = norm(w.as_object().unwrap());
    let names: Vec<&str> = n.map.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "clip_text_encode",
            "clip_text_encode_2",
            "clip_text_encode_1",
            "clip_text_encode_2_dup",
            "sink_1"
        ]
    );
}

/// Two output nodes with identical upstream structure *and* values, whose upstream copies differ
/// only downstream (x also feeds a preview, y does not). Which save is "first" must not depend
/// on the old IDs or node order.
#[test]
fn identical_outputs_are_ordered_by_downstream_context() {
    let w = json!({
        "x": {"class_type": "LoadImage", "inputs": {"image": "same.png"}},
        "y": {"class_type": "LoadImage", "inputs": {"image": "same.png"}},
        "a": {"class_type": "SaveImage", "inputs": {"images": ["x", 0]}},
        "b": {"class_type": "SaveImage", "inputs": {"images": ["y", 0]}},
        "c": {"class_type": "PreviewImage", "inputs": {"images": ["x", 0]}},
    });
    let w = w.as_object().unwrap();
    let base = text(&norm(w).nodes);
    for seed in 0..50 {
        assert_eq!(text(&norm(&relabel(w, seed)).nodes), base, "seed {seed}");
    }
}
