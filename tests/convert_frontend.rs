//! `comfyctl convert` against API exports made by ComfyUI's REAL web frontend (1.27.10,
//! `graphToPrompt()` in headless Chromium, see scripts/frontend_export.mjs) for small synthetic
//! UI workflows that exercise the tricky rules: seed control slots, the LoadImage upload slot,
//! Reroute chains, a PrimitiveNode feeding two inputs, muted and bypassed nodes, subgraph
//! instances with promoted widgets, `%Node.widget%` / `%date:…%` replacements, a PrimitiveNode's
//! "Run widget replace on values", dynamic prompts fed by a PrimitiveNode, legacy group nodes.
//! The gold files are committed, so this runs offline.

use assert_cmd::Command;
use serde_json::Value;

const FIX: &str = "tests/fixtures/frontend";

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `comfyctl convert` on `<name>.ui.json` with extra arguments and environment.
fn convert(name: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = Command::cargo_bin("comfyctl").unwrap();
    cmd.env_remove("COMFYCTL_NOW");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["convert", "--object-info"])
        .arg(format!("{FIX}/object_info.json"))
        .arg(format!("{FIX}/{name}.ui.json"))
        .args(args)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("convert prints JSON")
}

/// Converts `<name>.ui.json` and compares the parsed result with the frontend's `<name>.api.json`
/// (dict equality: key order is irrelevant to the server).
fn check(name: &str) {
    check_with(name, &[], &[]);
}

fn check_with(name: &str, args: &[&str], env: &[(&str, &str)]) {
    let ours = convert(name, args, env);
    let gold = read(&format!("{FIX}/{name}.api.json"));
    assert!(
        gold.as_object().is_some_and(|m| !m.is_empty()),
        "{name}: empty gold file"
    );
    assert_eq!(
        ours,
        gold,
        "{name}: comfyctl\n{}\nfrontend\n{}",
        serde_json::to_string_pretty(&ours).unwrap(),
        serde_json::to_string_pretty(&gold).unwrap()
    );
}

#[test]
fn seed_control_upload_slot_sampler_prefix_and_widget_counts() {
    check("fe01_seed_upload");
}

#[test]
fn reroute_chain_and_primitive_node_feeding_two_inputs() {
    check("fe02_reroute_primitive");
}

#[test]
fn muted_nodes_and_their_links() {
    check("fe03_muted");
}

#[test]
fn bypassed_nodes_route_by_type() {
    check("fe04_bypass");
}

#[test]
fn subgraph_instances_with_promoted_widgets() {
    check("fe05_subgraph");
}

#[test]
fn explicit_no_seed_control_and_titles_from_the_frontend_locale() {
    check("fe06_seed_control_false_and_titles");
}

#[test]
fn widget_references_in_filename_prefix() {
    // `%Empty Latent Image.width%` by title, `%Src.image%` by "Node name for S&R" (which wins
    // over a node titled the same), a PrimitiveNode's value seen through the widget it feeds,
    // forbidden characters turned into `_`, unknown nodes/widgets and `%width%` left as written,
    // and a PrimitiveNode-fed filename_prefix replaced too.
    check("fe07_widget_references");
    let out = convert("fe07_widget_references", &[], &[]);
    assert_eq!(
        out["7"]["inputs"]["filename_prefix"],
        "out/640x768_s123456789_cfg7.5_d1"
    );
}

#[test]
fn date_replacement_with_a_fixed_clock() {
    // The gold was exported with the browser's clock fixed at 2026-03-04T05:06:07 UTC
    // (FRONTEND_NOW/FRONTEND_TZ in scripts/frontend_export.mjs); COMFYCTL_NOW fixes comfyctl's.
    check_with(
        "fe08_date",
        &[],
        &[("COMFYCTL_NOW", "2026-03-04T05:06:07Z")],
    );
    // Unix seconds name the same instant.
    check_with("fe08_date", &[], &[("COMFYCTL_NOW", "1772600767")]);
    // Another time gives another prefix: the date really comes from the clock.
    let other = convert("fe08_date", &[], &[("COMFYCTL_NOW", "1999-12-31T23:59:58")]);
    assert_eq!(
        other["7"]["inputs"]["filename_prefix"],
        "1999-12-31/23-59-58_99_yyy_199912_%date:yyyy.MM%_31"
    );
}

#[test]
fn a_bad_fixed_clock_is_a_usage_error() {
    Command::cargo_bin("comfyctl")
        .unwrap()
        .env("COMFYCTL_NOW", "yesterday")
        .args(["convert", "--object-info"])
        .arg(format!("{FIX}/object_info.json"))
        .arg(format!("{FIX}/fe08_date.ui.json"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("COMFYCTL_NOW='yesterday'"));
}

#[test]
fn primitive_node_widget_replace_property() {
    // On: `%KSampler.sampler_name%` etc. replaced before the value reaches the widget (which
    // then applies its dynamic prompts); off: the text stays as written.
    check("fe09_primitive_replace");
}

/// The frontend's output for `fe10`'s positive prompt, `{red|green|blue} fox, /* block */
/// {big|{small|tiny}} // comment\nsnow \{kept\}`, is one of these (its choice is random).
fn fe10_possible() -> Vec<String> {
    let mut v = Vec::new();
    for colour in ["red", "green", "blue"] {
        for size in ["big", "small", "tiny"] {
            v.push(format!("{colour} fox,  {size} \nsnow {{kept}}"));
        }
    }
    v
}

#[test]
fn dynamic_prompts_fed_by_a_primitive_node() {
    let gold = read(&format!("{FIX}/fe10_dynamic_primitive.api.json"));
    let possible = fe10_possible();
    let gold_text = gold["2"]["inputs"]["text"].as_str().unwrap();
    // The gold is a real frontend export, so the set above must contain it.
    assert!(possible.iter().any(|p| p == gold_text), "{gold_text:?}");
    // Without --seed: the first option of every choice.
    let ours = convert("fe10_dynamic_primitive", &[], &[]);
    assert_eq!(ours["2"]["inputs"]["text"], "red fox,  big \nsnow {kept}");
    // Everything else (the deterministic negative prompt: comments, `{x|x}`, escapes, an
    // unclosed brace) equals the frontend's export.
    let mut a = ours.clone();
    let mut b = gold.clone();
    a["2"]["inputs"]["text"] = Value::Null;
    b["2"]["inputs"]["text"] = Value::Null;
    assert_eq!(a, b);
    assert_eq!(
        ours["3"]["inputs"]["text"],
        "blurry  low \nquality | ok, a\\b, one open x"
    );
    // With --seed: reproducible, always a possible frontend output, and every option occurs.
    let mut seen = std::collections::HashSet::new();
    for seed in 0..24 {
        let s = seed.to_string();
        let out = convert("fe10_dynamic_primitive", &["--seed", &s], &[]);
        let text = out["2"]["inputs"]["text"].as_str().unwrap().to_string();
        assert!(possible.contains(&text), "seed {seed}: {text:?}");
        if seed < 2 {
            let again = convert("fe10_dynamic_primitive", &["--seed", &s], &[]);
            assert_eq!(out, again, "seed {seed} is not reproducible");
        }
        seen.insert(text);
    }
    assert!(seen.len() >= 6, "seeds gave only {seen:?}");
}

#[test]
fn legacy_group_nodes_expand_into_their_inner_nodes() {
    // Two instances of one group: "workflow>Sampler" with its own widget values, and the older
    // "workflow/Sampler" spelling without any (the group's widgets then have their defaults,
    // which replace the inner nodes' saved values). Inner nodes are "<instance>:<index>",
    // inner links point at them, outer links go through the group's inputs and outputs.
    check("fe11_group_node");
    let out = convert("fe11_group_node", &[], &[]);
    assert_eq!(
        out["10:1"]["inputs"]["negative"],
        serde_json::json!(["10:2", 0])
    );
    assert_eq!(
        out["6"]["inputs"]["samples"],
        serde_json::json!(["10:1", 0])
    );
    assert!(out.get("10").is_none());
}

#[test]
fn group_node_with_a_primitive_name_clashes_and_bypass() {
    // A titled PrimitiveNode inside the group ("Steps value" + its control widget) feeds the
    // inner KSampler's steps; a second CLIPTextEncode's widget is "N text"; the bypassed
    // second instance routes its LATENT output to its latent_image input but still sends its
    // inner nodes.
    check("fe12_group_node_primitive");
}

#[test]
fn references_left_as_written_are_reported() {
    Command::cargo_bin("comfyctl")
        .unwrap()
        .env_remove("COMFYCTL_NOW")
        .args(["convert", "--object-info"])
        .arg(format!("{FIX}/object_info.json"))
        .arg(format!("{FIX}/fe07_widget_references.ui.json"))
        .assert()
        .code(0)
        .stderr(predicates::str::contains(
            "fe07_widget_references.ui.json: node 8: '%No Such Node.width%' is left as written: no node has",
        ))
        .stderr(predicates::str::contains(
            "node 8: '%KSampler.no_widget%' is left as written: node 'KSampler' has no widget 'no_widget'",
        ));
}
