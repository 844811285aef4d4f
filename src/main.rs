//! The `comfyctl` binary: parse arguments, run, and turn errors into messages and exit codes.
//! This is the only place errors are printed; exit codes are chosen in exactly one place,
//! [`comfyctl::error::Error::exit_code`].

use clap::Parser;
use comfyctl::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let json = comfyctl::wants_json(&cli);
    let code = match comfyctl::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                let v = comfyctl::result::error_document(&e);
                comfyctl::report::print_stdout(
                    &serde_json::to_string_pretty(&v).expect("serializable"),
                );
            }
            eprintln!(
                "comfyctl: error: {}",
                comfyctl::redacted::for_terminal(&e.to_string())
            );
            e.exit_code()
        }
    };
    std::process::exit(code);
}
