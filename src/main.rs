//! The `comfyctl` binary: parse arguments, run, and turn errors into messages and exit codes.
//! Exit codes are chosen in exactly one place, [`comfyctl::error::Error::exit_code`].

use clap::Parser;
use comfyctl::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let json = comfyctl::wants_json(&cli);
    let code = match comfyctl::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                let v = serde_json::json!({"status": "error", "error": e.to_json()});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).expect("serializable")
                );
            }
            eprintln!("comfyctl: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// mimalloc: `normalize` on large workflows touches a lot of fresh memory (the input text, a
/// record per node and input, output buffers). mimalloc's eagerly committed (huge-page) arenas
/// cut the page-fault time of a 100k-node normalize from ~55 ms to ~25 ms (1.2x overall, measured
/// side by side with hyperfine; scripts/bench_normalize.sh). The price is a higher baseline RSS
/// (~12 MiB instead of ~6 MiB for a small workflow), which a CLI can afford.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
