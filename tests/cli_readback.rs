//! Workflows read back from ComfyUI's outputs: every command that reads a workflow file takes a
//! PNG, WEBP or MP4 that ComfyUI wrote and uses the prompt embedded in it.

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;

fn comfyctl() -> Command {
    Command::cargo_bin("comfyctl").unwrap()
}

const DIR: &str = "tests/fixtures/readback";

fn normalized(path: &str) -> String {
    let out = comfyctl()
        .args(["normalize", path])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

/// Each real output reads back as exactly the workflow that was sent (after normalizing both).
#[test]
fn outputs_read_back_as_the_workflow_sent() {
    for (out, sent) in [
        ("comfyui_8x8.png", "png_sent.json"),
        ("comfyui_8x8.mp4", "mp4_sent.json"),
        ("comfyui_8x8.webp", "webp_sent.json"),
        ("comfyui_8x8_animated.png", "apng_sent.json"),
        ("../runpod_output.webp", "runpod_output_prompt.json"),
    ] {
        let from_output = normalized(&format!("{DIR}/{out}"));
        assert_eq!(from_output, normalized(&format!("{DIR}/{sent}")), "{out}");
        // ComfyUI's own additions are gone.
        assert!(!from_output.contains("is_changed"), "{out}");
        // From standard input too.
        comfyctl()
            .args(["normalize", "-"])
            .write_stdin(fs::read(format!("{DIR}/{out}")).unwrap())
            .assert()
            .success()
            .stdout(from_output);
    }
}

/// The UI workflow sent in `extra_pnginfo` comes back exactly, from each container that has one.
#[test]
fn the_ui_workflow_is_read_back_too() {
    for (out, ui) in [
        ("comfyui_8x8.png", "png_sent.ui.json"),
        ("comfyui_8x8.webp", "webp_sent.ui.json"),
        ("comfyui_8x8_animated.png", "apng_sent.ui.json"),
    ] {
        let bytes = fs::read(format!("{DIR}/{out}")).unwrap();
        let (_, found) = comfyctl::embedded::extract(&bytes).unwrap().unwrap();
        let got: serde_json::Value =
            serde_json::from_str(found.workflow.as_deref().expect(out)).unwrap();
        let sent: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(format!("{DIR}/{ui}")).unwrap()).unwrap();
        assert_eq!(got, sent, "{out}");
    }
}

#[test]
fn the_embedded_prompt_wins_over_the_ui_workflow() {
    // The PNG carries both `prompt` and `workflow`; without a schema only the prompt can be
    // used, so this would fail with the UI-format error if the workflow were taken.
    let png = fs::read(format!("{DIR}/comfyui_8x8.png")).unwrap();
    assert!(png.windows(9).any(|w| w == b"workflow\0"));
    comfyctl()
        .args(["verify", &format!("{DIR}/comfyui_8x8.png")])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "comfyui_8x8.png: ok: 2 node(s), 0 error(s)",
        ));
}

#[test]
fn verify_reads_every_kind_of_output() {
    comfyctl()
        .args([
            "verify",
            "tests/fixtures/runpod_output.webp",
            &format!("{DIR}/comfyui_8x8.mp4"),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "runpod_output.webp: ok: 5 node(s)",
        ))
        .stdout(predicate::str::contains("comfyui_8x8.mp4: ok: 3 node(s)"));
}

#[test]
fn an_output_without_metadata_is_a_clear_error() {
    let msg = "workflows/example.png: no workflow embedded (saved with --disable-metadata, or not made by ComfyUI)";
    comfyctl()
        .args(["normalize", "workflows/example.png"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(msg));
    comfyctl()
        .args(["verify", "--json", "workflows/example.png"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "\"code\": \"no_embedded_workflow\"",
        ));
}

#[test]
fn a_truncated_output_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let webp = fs::read("tests/fixtures/runpod_output.webp").unwrap();
    let cut = dir.path().join("cut.webp");
    fs::write(&cut, &webp[..webp.len() / 2]).unwrap();
    comfyctl()
        .arg("normalize")
        .arg(&cut)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}: cannot read the workflow embedded in this WEBP file: the file is truncated",
            cut.display()
        )));
}

/// An output that carries only the UI workflow goes the UI-format way: converted with a
/// schema, else the "Export (API)" error. (The PNG is written here: ComfyUI always embeds the
/// prompt, so no real output has the UI workflow alone.)
#[test]
fn an_output_with_only_the_ui_workflow_goes_the_ui_way() {
    let dir = tempfile::tempdir().unwrap();
    let ui = fs::read_to_string("tests/fixtures/schema/ui_basic.json").unwrap();
    let png = dir.path().join("ui_only.png");
    {
        let f = fs::File::create(&png).unwrap();
        let mut enc = png::Encoder::new(f, 1, 1);
        enc.set_color(png::ColorType::Grayscale);
        enc.add_text_chunk("workflow".into(), ui).unwrap();
        enc.write_header().unwrap().write_image_data(&[0]).unwrap();
    }
    let schema = "tests/fixtures/schema/object_info_min.json";
    let from_png = comfyctl()
        .arg("normalize")
        .arg(&png)
        .args(["--object-info", schema])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(from_png).unwrap(),
        normalized("tests/fixtures/schema/ui_basic.api.json")
    );
    comfyctl()
        .arg("normalize")
        .arg(&png)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("this is a UI-format workflow"))
        .stderr(predicate::str::contains("Export (API)"));
}
