//! `comfyctl diff OLD NEW`: a structural diff of two workflows after normalization (see
//! [`crate::diff`]); usable in CI through its exit code.

use crate::cli::DiffArgs;
use crate::diff::{diff, render, to_json, Side};
use crate::error::{exit, Error, Result};
use crate::normalize::NameTable;
use crate::report::Reporter;
use crate::settings::SchemaFrom;

/// `comfyctl diff OLD NEW [--json]`: 0 identical, 1 different, 2 bad input.
pub fn run(args: &DiffArgs) -> Result<i32> {
    if args.old.as_os_str() == "-" && args.new.as_os_str() == "-" {
        return Err(Error::Usage(
            "diff: standard input can be only one of the two files".into(),
        ));
    }
    let reporter = Reporter::new(args.json, 0);
    let table = NameTable::builtin();
    let schema = SchemaFrom::resolve(&args.schema)?;
    let load = |p: &std::path::Path| -> Result<Side> {
        let doc = crate::load::load_document(p, &schema, &reporter)?;
        Side::from_document(&doc, &table)
    };
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let d = diff(&old.nodes, &new.nodes);
    if args.json {
        let v = to_json(&d, &old, &new);
        crate::report::print_stdout(&serde_json::to_string_pretty(&v).expect("serializable"));
    } else {
        print!("{}", render(&d, &old, &new));
    }
    Ok(if d.is_identical() {
        exit::OK
    } else {
        exit::FAILED
    })
}
