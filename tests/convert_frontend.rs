//! `comfyctl convert` against API exports made by ComfyUI's REAL web frontend (1.27.10,
//! `graphToPrompt()` in headless Chromium, see scripts/frontend_export.mjs) for small synthetic
//! UI workflows that exercise the tricky rules: seed control slots, the LoadImage upload slot,
//! Reroute chains, a PrimitiveNode feeding two inputs, muted and bypassed nodes, subgraph
//! instances with promoted widgets. The gold files are committed, so this runs offline.

use assert_cmd::Command;
use serde_json::Value;

const FIX: &str = "tests/fixtures/frontend";

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Converts `<name>.ui.json` and compares the parsed result with the frontend's `<name>.api.json`
/// (dict equality: key order is irrelevant to the server).
fn check(name: &str) {
    let out = Command::cargo_bin("comfyctl")
        .unwrap()
        .args(["convert", "--object-info"])
        .arg(format!("{FIX}/object_info.json"))
        .arg(format!("{FIX}/{name}.ui.json"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let ours: Value = serde_json::from_slice(&out).expect("convert prints JSON");
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
