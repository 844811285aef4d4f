//! Injection planning: resolving `--image`, `--prompt`, `--seed`, `--set` against a workflow and
//! checking every input before any network call.

use comfyctl::inject::{plan, ImageArg, InjectOptions, SeedChoice, SetArg};
use comfyctl::normalize::{normalize, NameTable};
use serde_json::{json, Map, Value};

fn wan() -> Map<String, Value> {
    serde_json::from_str(include_str!("../workflows/wan_i2v.json")).unwrap()
}

fn two_images() -> Map<String, Value> {
    json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"title": "Start frame"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}, "_meta": {"title": "End frame"}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["3", 0]}}
    })
    .as_object()
    .unwrap()
    .clone()
}

const PNG: &str = "workflows/example.png";

fn err(nodes: &Map<String, Value>, opts: &InjectOptions) -> String {
    plan(nodes, "wf.json", None, opts).unwrap_err().to_string()
}

#[test]
fn one_loadimage_takes_a_bare_path() {
    let opts = InjectOptions {
        images: vec![ImageArg::parse(PNG)],
        ..Default::default()
    };
    let p = plan(&wan(), "wan", None, &opts).unwrap();
    assert_eq!(p.images.len(), 1);
    assert_eq!(p.images[0].node, "52");
    assert!(
        p.images[0].upload_name.starts_with("comfyctl-")
            && p.images[0].upload_name.ends_with(".png")
    );
    // Same bytes, same name: re-sends reuse the server's file and cache.
    let again = plan(&wan(), "wan", None, &opts).unwrap();
    assert_eq!(again.images[0].upload_name, p.images[0].upload_name);
}

#[test]
fn several_loadimages_need_a_node_and_list_candidates() {
    let e = err(
        &two_images(),
        &InjectOptions {
            images: vec![ImageArg::parse(PNG)],
            ..Default::default()
        },
    );
    assert!(e.contains("has 2 LoadImage nodes"), "{e}");
    assert!(
        e.contains("1 \"Start frame\"") && e.contains("2 \"End frame\""),
        "{e}"
    );

    // By title, by ID, and by original ID after normalization.
    let by_title = plan(
        &two_images(),
        "f",
        None,
        &InjectOptions {
            images: vec![ImageArg::parse(&format!("End frame={PNG}"))],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(by_title.images[0].node, "2");
    let n = normalize(&two_images(), "f", &NameTable::builtin()).unwrap();
    let by_orig = plan(
        &n.nodes,
        "f",
        Some(&n),
        &InjectOptions {
            images: vec![ImageArg::parse(&format!("2={PNG}"))],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(by_orig.images[0].node, "load_image_2");
    let e = err(
        &two_images(),
        &InjectOptions {
            images: vec![ImageArg::parse(&format!("nope={PNG}"))],
            ..Default::default()
        },
    );
    assert!(
        e.contains("no LoadImage node called 'nope'") && e.contains("candidates"),
        "{e}"
    );
}

#[test]
fn images_are_checked_before_anything_is_sent() {
    let e = err(
        &wan(),
        &InjectOptions {
            images: vec![ImageArg::parse("missing.png")],
            ..Default::default()
        },
    );
    assert!(e.contains("missing.png: cannot read"), "{e}");
    let e = err(
        &wan(),
        &InjectOptions {
            images: vec![ImageArg::parse("Cargo.toml")],
            ..Default::default()
        },
    );
    assert!(e.contains("not a PNG, JPEG, WEBP or GIF"), "{e}");
}

#[test]
fn prompts_follow_conditioning() {
    let opts = InjectOptions {
        prompt: Some("a fox".into()),
        negative: Some("blurry".into()),
        ..Default::default()
    };
    let p = plan(&wan(), "wan", None, &opts).unwrap();
    assert!(p
        .edits
        .contains(&("6".into(), "text".into(), json!("a fox"))));
    assert!(p
        .edits
        .contains(&("7".into(), "text".into(), json!("blurry"))));
}

#[test]
fn prompt_without_a_prompt_node_suggests_set() {
    let e = err(
        &two_images(),
        &InjectOptions {
            prompt: Some("x".into()),
            ..Default::default()
        },
    );
    assert!(e.contains("--set NODE.text"), "{e}");
}

#[test]
fn same_text_node_for_both_roles_is_refused() {
    let w = json!({
        "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["2", 0]}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "c"}},
        "3": {"class_type": "KSampler", "inputs": {"positive": ["1", 0], "negative": ["1", 0], "seed": 1}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}
    });
    let e = err(
        w.as_object().unwrap(),
        &InjectOptions {
            prompt: Some("y".into()),
            ..Default::default()
        },
    );
    assert!(e.contains("feeds both positive and negative"), "{e}");
}

#[test]
fn seeds_set_every_seed_input() {
    let flux: Map<String, Value> = serde_json::from_str(
        r#"{"25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1}},
            "3": {"class_type": "KSampler", "inputs": {"seed": 2, "noise": ["25", 0]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}}"#,
    )
    .unwrap();
    let p = plan(
        &flux,
        "f",
        None,
        &InjectOptions {
            seed: Some(SeedChoice::Fixed(42)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.seed, Some(42));
    assert!(p
        .edits
        .contains(&("25".into(), "noise_seed".into(), json!(42))));
    assert!(p.edits.contains(&("3".into(), "seed".into(), json!(42))));
    let r = plan(
        &flux,
        "f",
        None,
        &InjectOptions {
            seed: Some(SeedChoice::Random),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.seed.unwrap() < 1 << 50);
    let e = err(
        &two_images(),
        &InjectOptions {
            seed: Some(SeedChoice::Fixed(1)),
            ..Default::default()
        },
    );
    assert!(e.contains("no 'seed' or 'noise_seed'"), "{e}");
}

#[test]
fn set_checks_nodes_and_inputs() {
    let ok = |s: &str| {
        plan(
            &wan(),
            "wan",
            None,
            &InjectOptions {
                sets: vec![SetArg::parse(s).unwrap()],
                ..Default::default()
            },
        )
    };
    let p = ok("3.steps=30").unwrap();
    assert_eq!(
        p.edits,
        vec![("3".to_string(), "steps".to_string(), json!(30))]
    );
    let p = ok("KSampler.sampler_name=euler").unwrap();
    assert_eq!(p.edits[0].2, json!("euler"));
    let e = ok("3.model=1").unwrap_err().to_string();
    assert!(e.contains("is a link"), "{e}");
    let e = ok("99.steps=1").unwrap_err().to_string();
    assert!(e.contains("no node called '99'"), "{e}");
    let e = ok("3.stesp=1").unwrap_err().to_string();
    assert!(e.contains("did you mean 'steps'"), "{e}");
    let p = ok("3.add_noise=\"enable\"").unwrap();
    assert!(
        p.warnings[0].contains("has no input 'add_noise' yet"),
        "{:?}",
        p.warnings
    );
}
