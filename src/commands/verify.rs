//! `comfyctl verify`: structural (and, with a schema, schema-aware) checks of workflows before
//! any GPU time is spent on them.

use crate::cli::VerifyArgs;
use crate::diagnostic::Diagnostic;
use crate::error::{exit, Error, Result};
use crate::job::load_names;
use crate::load::load_document_with;
use crate::report::Reporter;
use crate::settings::SchemaFrom;
use crate::verify::{self, FileReport};
use serde_json::json;

/// `comfyctl verify`
pub fn run(args: &VerifyArgs) -> Result<i32> {
    let reporter = Reporter::new(args.json, 0);
    let table = load_names(args.names.as_deref())?;
    let schema = crate::schema::load(&SchemaFrom::resolve(&args.schema)?, &reporter)?;
    let mut reports = Vec::new();
    for path in &args.workflows {
        let report = match load_document_with(path, schema.as_ref(), &reporter) {
            Ok((doc, converted)) => {
                let mut r = verify::verify_document(&doc, &table, args.strict);
                if converted && args.json {
                    // Text mode said so on stderr; JSON consumers get it in the report.
                    r.diagnostics.insert(
                        0,
                        Diagnostic::info(
                            "converted_ui",
                            "UI-format workflow converted to API format using the server's node schema; node IDs of subgraph contents are '<instance>:<inner>'",
                        )
                        .file(&doc.file),
                    );
                }
                if let Some(s) = &schema {
                    // The schema knows which classes are output nodes: its verdict replaces the
                    // structural guess from class names.
                    r.diagnostics
                        .retain(|d| !matches!(d.code, "no_output_node" | "unused_node"));
                    let extra: Vec<Diagnostic> = crate::schema::check(s, doc.nodes(), &doc.file);
                    r.diagnostics.extend(extra);
                    r = r.recount(args.strict);
                }
                r
            }
            Err(Error::Load(e)) => FileReport::failed(e.to_diagnostic()),
            Err(e) => return Err(e),
        };
        if !args.json {
            print!("{}", verify::render(&report));
        }
        reports.push(report);
    }
    // Freeing thousands of small allocations costs ~0.4 ms of a ~5 ms run; the process is
    // about to exit and the OS reclaims it all at once.
    std::mem::forget(schema);
    let valid = reports.iter().all(|r| r.valid);
    if args.json {
        let v = json!({"valid": valid, "files": reports});
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("serializable")
        );
    }
    Ok(if valid { exit::OK } else { exit::FAILED })
}
