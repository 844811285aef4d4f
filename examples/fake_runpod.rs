//! The fake RunPod endpoint of the integration tests as a standalone server, for
//! `scripts/bench_runpod.sh`.
//!
//! `cargo run --release --example fake_runpod -- [--job-secs 3] [--jitter-secs 0] [--queue-secs 0] [--output-mb 0]`
//! prints its base URL on the first line of standard output and serves until killed. Each job
//! completes with one WEBP-headed file of `--output-mb` MB (default: the 3.6 kB fixture), base64 in
//! `output.images`. `GET /_fake/final_times` gives the wall-clock millisecond at which each job
//! reached COMPLETED, so the benchmark can measure how long the client took to notice and save.

#[path = "../tests/common/fake_runpod.rs"]
mod fake_runpod;

use base64::Engine as _;
use fake_runpod::{FakeRunpod, Outcome, Script};
use std::sync::Arc;
use std::time::Duration;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let job = arg("--job-secs", 3.0);
    let queue = arg("--queue-secs", 0.0);
    let mb = arg("--output-mb", 0.0);
    let jitter = arg("--jitter-secs", 0.0);
    let file: Vec<u8> = if mb > 0.0 {
        let n = (mb * 1_000_000.0) as usize;
        let mut v = Vec::with_capacity(n);
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&((n - 8) as u32).to_le_bytes());
        v.extend_from_slice(b"WEBPVP8X");
        let mut x: u32 = 0x9E37_79B9;
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(x as u8);
        }
        v
    } else {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/runpod_output.webp"
        ))
        .expect("fixture")
    };
    let data = base64::engine::general_purpose::STANDARD.encode(&file);
    drop(file);
    let mut output = String::with_capacity(data.len() + 100);
    output.push_str(r#"{"images":[{"filename":"bench_00001_.webp","type":"base64","data":""#);
    output.push_str(&data);
    output.push_str(r#""}]}"#);
    drop(data);
    let fake = FakeRunpod::start(Script {
        queue_for: Duration::from_secs_f64(queue),
        run_for: Duration::from_secs_f64(job),
        run_jitter: Duration::from_secs_f64(jitter),
        outcome: Outcome::Completed(Arc::new(output)),
        ..Script::default()
    });
    println!("{}", fake.url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
