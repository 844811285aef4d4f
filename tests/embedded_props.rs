//! Hostile bytes never panic the container readers: random and mutated data and truncations
//! of real ComfyUI outputs give `Ok` or a typed error, and never a wrong prompt.

use comfyctl::embedded::{extract, EmbedError};
use proptest::prelude::*;

const WEBP: &[u8] = include_bytes!("fixtures/runpod_output.webp");
const PNG: &[u8] = include_bytes!("fixtures/readback/comfyui_8x8.png");
const MP4: &[u8] = include_bytes!("fixtures/readback/comfyui_8x8.mp4");
const APNG: &[u8] = include_bytes!("fixtures/readback/comfyui_8x8_animated.png");

fn real_prompt(file: &[u8]) -> String {
    extract(file).unwrap().unwrap().1.prompt.unwrap()
}

/// `Ok` (the bytes may now say anything, a mutated prompt included) or a typed error; never a
/// panic, and never an I/O error from an in-memory read.
fn check(bytes: &[u8]) {
    match extract(bytes) {
        Ok(_) | Err(EmbedError::Malformed { .. }) => {}
        Err(EmbedError::Io(e)) => panic!("in-memory reads do not fail: {e}"),
    }
}

#[test]
fn every_truncation_of_the_real_outputs() {
    for file in [WEBP, PNG, MP4, APNG] {
        let full = real_prompt(file);
        for n in 0..file.len() {
            match extract(&file[..n]) {
                Ok(Some((_, e))) => assert!(e.prompt.is_none() || e.prompt == Some(full.clone())),
                Ok(None) => assert!(n < 12, "sniffed at {n} bytes"),
                Err(EmbedError::Malformed { .. }) => {}
                Err(EmbedError::Io(e)) => panic!("{e}"),
            }
        }
    }
    // The WEBP's EXIF chunk is last and the MP4's moov is last: every cut is an error.
    for file in [WEBP, MP4] {
        for n in 12..file.len() {
            assert!(extract(&file[..n]).is_err(), "cut at {n}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_real_outputs(which in 0usize..4, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = [WEBP, PNG, MP4, APNG][which].to_vec();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        check(&bytes);
    }

    #[test]
    fn random_bytes_behind_each_signature(which in 0usize..3, tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let head: &[u8] = [&b"\x89PNG\r\n\x1a\n"[..], b"RIFF\xff\xff\xff\x7fWEBP", b"\0\0\0\x10ftypisom"][which];
        let bytes = [head, &tail].concat();
        check(&bytes);
    }

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = extract(&bytes);
    }
}
