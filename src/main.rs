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
