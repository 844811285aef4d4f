//! `comfyctl normalize` as a user runs it.

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;

fn comfyctl() -> Command {
    Command::cargo_bin("comfyctl").unwrap()
}

#[test]
fn normalizes_the_wan_workflow_to_the_shipped_form() {
    let expected = fs::read_to_string("workflows/wan_i2v.normalized.json").unwrap();
    comfyctl()
        .args(["normalize", "workflows/wan_i2v.json"])
        .assert()
        .success()
        .stdout(expected.clone());
    // From standard input too.
    comfyctl()
        .args(["normalize", "-"])
        .write_stdin(fs::read("workflows/wan_i2v.json").unwrap())
        .assert()
        .success()
        .stdout(expected);
}

#[test]
fn show_map_goes_to_stderr() {
    comfyctl()
        .args(["normalize", "workflows/wan_i2v.json", "--show-map"])
        .assert()
        .success()
        .stderr(predicate::str::contains("6 → clip_text_encode\n"))
        .stderr(predicate::str::contains("7 → clip_text_encode_2\n"))
        .stderr(predicate::str::contains("55 → model_loader_1\n"));
}

#[test]
fn writes_output_file_and_check_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.json");
    comfyctl()
        .args(["normalize", "workflows/sdxl_t2i.json", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    comfyctl()
        .args(["normalize", "--check"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::ends_with("normalized\n"));
    comfyctl()
        .args(["normalize", "--check", "workflows/sdxl_t2i.json"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "not normalized: node '4' would be renamed to 'checkpoint_loader_simple_1'",
        ));
    // Re-normalizing is a no-op, byte for byte.
    let once = fs::read_to_string(&out).unwrap();
    comfyctl()
        .arg("normalize")
        .arg(&out)
        .assert()
        .success()
        .stdout(once);
}

#[test]
fn check_flags_formatting_differences() {
    let dir = tempfile::tempdir().unwrap();
    let compact = dir.path().join("c.json");
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string("workflows/wan_i2v.normalized.json").unwrap())
            .unwrap();
    fs::write(&compact, serde_json::to_string(&v).unwrap()).unwrap();
    comfyctl()
        .args(["normalize", "--check"])
        .arg(&compact)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("formatting differs"));
}

#[test]
fn keeps_the_runpod_wrapper() {
    let out = comfyctl()
        .args(["normalize", "tests/fixtures/runpod_request.json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["input"]["images"][0]["name"], "in.png");
    let wf = v["input"]["workflow"].as_object().unwrap();
    assert_eq!(
        wf.keys().collect::<Vec<_>>(),
        ["load_image_1", "save_image_1"]
    );
    assert_eq!(
        wf["save_image_1"]["inputs"]["images"],
        serde_json::json!(["load_image_1", 0])
    );
}

#[test]
fn names_file_overrides_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let names = dir.path().join("names.json");
    fs::write(
        &names,
        r#"{"KSampler": "sampler", "CheckpointLoaderSimple": "ckpt_1"}"#,
    )
    .unwrap();
    comfyctl()
        .args([
            "normalize",
            "workflows/sdxl_t2i.json",
            "--show-map",
            "--names",
        ])
        .arg(&names)
        .assert()
        .success()
        .stderr(predicate::str::contains("3 → sampler\n"))
        .stderr(predicate::str::contains("4 → ckpt_1\n"));
    fs::write(&names, r#"{"KSampler": "bad name!"}"#).unwrap();
    comfyctl()
        .args(["normalize", "workflows/sdxl_t2i.json", "--names"])
        .arg(&names)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("letters, digits"));
}

#[test]
fn ui_format_is_explained() {
    comfyctl()
        .args(["normalize", "tests/fixtures/ui_format.json"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "UI-format workflow; export it with 'Export (API)'",
        ));
}

#[test]
fn parse_errors_have_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.json");
    fs::write(&f, "{\n  \"1\": {\"class_type\": \"X\",, }\n}").unwrap();
    comfyctl()
        .arg("normalize")
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.json:2:"));
}

#[test]
fn broken_graph_names_node_and_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    comfyctl()
        .args(["normalize", "tests/fixtures/broken.json", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "node 2 \"Invert it\" (ImageInvert) input 'image': links to node '99', which does not exist",
        ))
        .stderr(predicate::str::contains("node 4: is a string, not a node object"))
        .stderr(predicate::str::contains("node 5: has no 'class_type'"));
    assert!(!out.exists(), "no partial output");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp files left"
    );
}

#[test]
fn missing_file_is_a_usage_error() {
    comfyctl()
        .args(["normalize", "does/not/exist.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does/not/exist.json: cannot read"));
}

#[test]
fn big_numbers_round_trip() {
    let w = r#"{"1": {"inputs": {"seed": 987948718394761, "cfg": 6.0, "denoise": 1, "x": 1e-7}, "class_type": "KSampler"}}"#;
    comfyctl()
        .args(["normalize", "-"])
        .write_stdin(w)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"seed\": 987948718394761,"))
        .stdout(predicate::str::contains("\"cfg\": 6.0,"))
        .stdout(predicate::str::contains("\"denoise\": 1,"))
        .stdout(predicate::str::contains("\"x\": 1e-7"));
}

/// A large workflow goes the parallel way (two reader threads, a two-half parse, a two-half
/// write): from a file or from standard input it gives the same bytes, which the general path
/// (`--check`) then finds normalized.
#[test]
fn a_large_workflow_normalizes_the_same_from_a_file_and_from_stdin() {
    let mut m = serde_json::Map::new();
    let n = 21_000;
    for i in 1..=n {
        let (class, inputs) = match i % 3 {
            1 => (
                "LoadImage",
                serde_json::json!({"image": format!("in_{}.png", (i * 7919) % 1000), "upload": "image"}),
            ),
            2 => (
                "ImageScaleBy",
                serde_json::json!({"upscale_method": "nearest-exact", "scale_by": 1.5,
                    "image": [(n + 2 - i).to_string(), 0]}),
            ),
            _ => (
                "SaveAnimatedWEBP",
                serde_json::json!({"filename_prefix": format!("out/{i}"), "fps": 6.0, "lossless": false,
                    "quality": 80, "method": "default", "images": [(n + 2 - i).to_string(), 0]}),
            ),
        };
        // IDs in reverse (links point to the previous node's), so the output order is not the
        // file's.
        m.insert(
            (n + 1 - i).to_string(),
            serde_json::json!({"inputs": inputs, "class_type": class, "_meta": {"title": format!("{class} {i}")}}),
        );
    }
    let text = serde_json::to_string_pretty(&m).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.json");
    fs::write(&input, &text).unwrap();
    assert!(text.len() > 4 << 20, "{} bytes", text.len());

    let out = dir.path().join("big.normalized.json");
    comfyctl()
        .args(["normalize"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let normalized = fs::read_to_string(&out).unwrap();
    comfyctl()
        .args(["normalize", "-"])
        .write_stdin(text.clone())
        .assert()
        .success()
        .stdout(normalized.clone());
    let v: serde_json::Value = serde_json::from_str(&normalized).unwrap();
    assert_eq!(v.as_object().unwrap().len(), n);
    assert!(v.get("save_webp_1").is_some() && v.get("load_image_5000").is_some());
    comfyctl()
        .args(["normalize", "--check"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::ends_with("normalized\n"));
    assert_eq!(
        fs::read_to_string(&input).unwrap(),
        text,
        "the input is untouched"
    );
}

/// A file larger than the memory the process may take (a sparse 64 GiB file, with the address
/// space limited to 4 GB so this holds whatever the machine's overcommit setting): an error that
/// says so, not an abort.
#[cfg(unix)]
#[test]
fn a_file_too_large_for_memory_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    fs::File::create(&path).unwrap().set_len(64 << 30).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("comfyctl");
    Command::new("sh")
        .args(["-c", "ulimit -v 4000000 && exec \"$0\" normalize \"$1\""])
        .arg(&bin)
        .arg(&path)
        .assert()
        .failure()
        .code(predicate::ne(134).and(predicate::ne(101)))
        .stderr(
            predicate::str::contains("huge.json").and(predicate::str::contains("out of memory")),
        );
}
