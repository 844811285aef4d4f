//! Secrets never reach the terminal through the help text: clap would otherwise print the value of
//! every environment variable it reads (`[env: COMFY_URL=https://user:password@host]`).

use assert_cmd::Command;
use predicates::prelude::*;

#[test]
fn help_never_shows_environment_values() {
    for args in [
        vec!["send", "--help"],
        vec!["schema", "pull", "--help"],
        vec!["status", "--help"],
        vec!["cancel", "--help"],
    ] {
        Command::cargo_bin("comfyctl")
            .unwrap()
            .args(&args)
            .env("COMFY_URL", "https://user:hunter2@gpu.example.com/")
            .env("RUNPOD_URL", "https://hunter2.example.com/")
            .env("RUNPOD_ENDPOINT_ID", "hunter2-endpoint")
            .env("RUNPOD_API_KEY", "rpa_hunter2")
            .env("COMFY_CLIENT_ID", "hunter2-client")
            .assert()
            .success()
            .stdout(predicate::str::contains("hunter2").not());
    }
}
