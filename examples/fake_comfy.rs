//! The tests' fake ComfyUI as a standalone server, for `scripts/bench_send_comfy.sh` and for
//! trying comfyctl by hand without a GPU:
//!
//! ```text
//! cargo run --example fake_comfy -- --exec-ms 500 --output-mb 20
//! ```
//!
//! Prints its URL on the first line of standard output, then serves until killed. Options:
//! `--exec-ms N` (time each prompt "runs", default 500), `--output-mb N` (size of the one output
//! file, a WEBP-looking body; default: the small generated outputs), `--steps N` (progress
//! messages, default 10).

#[path = "../tests/common/fake_comfy.rs"]
mod fake_comfy;

use fake_comfy::{fake_webp, FakeComfy, FakeFile, Scenario};
use std::time::Duration;

fn main() {
    let mut scenario = Scenario {
        exec_time: Duration::from_millis(500),
        steps: 10,
        ..Scenario::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> u64 {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("fake_comfy: {name} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--exec-ms" => scenario.exec_time = Duration::from_millis(num("--exec-ms")),
            "--steps" => scenario.steps = num("--steps") as u32,
            "--output-mb" => {
                let mb = num("--output-mb") as usize;
                scenario.outputs = Some(vec![FakeFile::new(
                    "bench_00001_.webp",
                    fake_webp(mb * 1024 * 1024),
                )]);
            }
            other => {
                eprintln!("fake_comfy: unknown argument '{other}' (--exec-ms N, --output-mb N, --steps N)");
                std::process::exit(2);
            }
        }
    }
    let fake = FakeComfy::start(scenario);
    println!("{}", fake.url);
    loop {
        std::thread::park();
    }
}
