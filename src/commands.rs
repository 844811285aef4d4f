//! The offline subcommands (`normalize`, `verify`, `convert`) and document loading shared by
//! every subcommand.

use crate::cli::{ConvertArgs, NormalizeArgs, SchemaSource, VerifyArgs};
use crate::diagnostic::Diagnostic;
use crate::error::{exit, Error, Result};
use crate::normalize;
use crate::outputs::write_atomic;
use crate::report::Reporter;
use crate::send::load_names;
use crate::verify::{self, FileReport};
use crate::workflow::{read_source, Document, LoadError};
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Loads a workflow. A UI-format file is converted to API format when a schema is available
/// (`--server`, `--object-info`, or a cached schema), with a note on stderr; otherwise it is the
/// usual "export it with Export (API)" error.
pub fn load_document(path: &Path, schema: &SchemaSource, reporter: &Reporter) -> Result<Document> {
    let (file, text) = read_source(path)?;
    document_from_text(path, &file, &text, schema, reporter)
}

/// [`load_document`] for text already read with [`read_source`].
fn document_from_text(
    path: &Path,
    file: &str,
    text: &str,
    schema: &SchemaSource,
    reporter: &Reporter,
) -> Result<Document> {
    match Document::parse(text, file) {
        Err(LoadError::UiFormat { file }) => {
            let Some(schema) = crate::schema::load(schema, reporter)? else {
                return Err(LoadError::UiFormat { file }.into());
            };
            convert_ui_text(path, file, text, &schema, reporter)
        }
        other => Ok(other?),
    }
}

/// [`load_document`] with an already-loaded schema (so `verify` fetches it once for all files).
/// The flag says whether a UI-format file was converted.
pub fn load_document_with(
    path: &Path,
    schema: Option<&crate::schema::Schema>,
    reporter: &Reporter,
) -> Result<(Document, bool)> {
    let (file, text) = read_source(path)?;
    match Document::parse(&text, &file) {
        Err(LoadError::UiFormat { file }) => match schema {
            Some(schema) => convert_ui_text(path, file, &text, schema, reporter).map(|d| (d, true)),
            None => Err(LoadError::UiFormat { file }.into()),
        },
        other => Ok((other?, false)),
    }
}

/// Converts the text of a UI-format file (already read once) to an API-format document.
fn convert_ui_text(
    path: &Path,
    file: String,
    text: &str,
    schema: &crate::schema::Schema,
    reporter: &Reporter,
) -> Result<Document> {
    if path.as_os_str() == "-" {
        return Err(Error::Usage(format!(
            "{file}: UI-format workflows cannot be converted from standard input here; save it to a file or run 'comfyctl convert'"
        )));
    }
    let ui: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::Usage(format!("{file}: {e}")))?;
    let (nodes, notes) = crate::convert::convert_with_notes(&ui, schema, &file)?;
    reporter.info(format!(
        "{file}: UI-format workflow converted to API format ({} nodes) using the server's node schema",
        nodes.len()
    ));
    for n in notes {
        reporter.warn(format!("{file}: {n}"));
    }
    Ok(Document::from_value(
        serde_json::Value::Object(nodes),
        &file,
    )?)
}

/// `comfyctl normalize`
pub fn normalize_cmd(args: &NormalizeArgs) -> Result<i32> {
    let reporter = Reporter::new(false, 0);
    let table = load_names(args.names.as_deref())?;
    let from_stdin = args.workflow.as_os_str() == "-";
    // Read once: the fast path, the general path and `--check` all use this text.
    let (file, mut text) = read_source(&args.workflow)?;
    if !args.check {
        // The fast path for a plain, valid node map (see `normalize::fast`), from a file or
        // standard input: the same bytes with a fraction of the time and memory. Anything else,
        // and every error, goes the general way.
        let written = normalize::fast::with_workflow(&mut text, |wf| {
            let n = wf.normalize(&table);
            if args.show_map {
                show_map(n.map());
            }
            write_output(args.output.as_deref(), |w| n.write_pretty(w))
        });
        if let Some(written) = written {
            written?;
            return Ok(exit::OK);
        }
    }
    let mut doc = document_from_text(&args.workflow, &file, &text, &args.schema, &reporter)?;
    let n = normalize::normalize(doc.nodes(), &doc.file, &table).map_err(|d| {
        Error::InvalidWorkflow {
            file: doc.file.clone(),
            diagnostics: d,
        }
    })?;
    if args.show_map {
        show_map(n.map.iter().map(|(o, n)| (o.as_str(), n.as_str())));
    }
    if args.check {
        let original_text = (!from_stdin).then_some(text.as_str());
        let before = doc.clone();
        doc.set_nodes(n.nodes.clone());
        let normalized_text = doc.to_pretty_string();
        return Ok(check_normalized(
            &before,
            &n,
            original_text,
            &normalized_text,
        ));
    }
    doc.set_nodes(n.nodes);
    write_output(args.output.as_deref(), |w| {
        serde_json::to_writer_pretty(&mut *w, doc.root()).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()
    })?;
    Ok(exit::OK)
}

/// `--show-map`: `old → new` per node on standard error.
fn show_map<'s>(map: impl Iterator<Item = (&'s str, &'s str)>) {
    let mut err = std::io::BufWriter::new(std::io::stderr().lock());
    for (old, new) in map {
        let _ = writeln!(err, "{old} → {new}");
    }
    let _ = err.flush();
}

/// Streams `normalize`'s output through a buffer to `path` (atomically, like
/// [`write_atomic`]: a temporary file in the same directory, renamed over the target) or to
/// standard output, so a large workflow is never held in memory a second time as text.
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    const BUF: usize = 1 << 16;
    let Some(path) = path else {
        let mut out = std::io::BufWriter::with_capacity(BUF, std::io::stdout().lock());
        return write(&mut out).map_err(|e| Error::io("writing standard output", e));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".comfyctl-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    let mut out = std::io::BufWriter::with_capacity(BUF, tmp);
    write(&mut out).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let tmp = out
        .into_inner()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.into_error()))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
}

/// `--check`: prints one line and returns 0 when already normalized, 1 otherwise.
fn check_normalized(
    before: &Document,
    n: &normalize::Normalized,
    original: Option<&str>,
    normalized_text: &str,
) -> i32 {
    let file = &before.file;
    if let Some((old, new)) = n.map.iter().find(|(o, n)| o != n) {
        let renamed = n.map.iter().filter(|(o, n)| o != n).count();
        println!("{file}: not normalized: node '{old}' would be renamed to '{new}' ({renamed} of {} nodes renamed)", n.map.len());
        return exit::FAILED;
    }
    let order_same = before
        .nodes()
        .keys()
        .zip(n.nodes.keys())
        .all(|(a, b)| a == b);
    if !order_same {
        println!(
            "{file}: not normalized: node order differs (normalized order puts dependencies first)"
        );
        return exit::FAILED;
    }
    if before.nodes() != &n.nodes {
        println!(
            "{file}: not normalized: node keys are not in the order inputs, class_type, _meta"
        );
        return exit::FAILED;
    }
    if let Some(orig) = original {
        if orig.trim_end() != normalized_text.trim_end() {
            let line = orig
                .lines()
                .zip(normalized_text.lines())
                .position(|(a, b)| a != b)
                .map(|l| l + 1)
                .unwrap_or_else(|| orig.lines().count().min(normalized_text.lines().count()) + 1);
            println!("{file}: not normalized: formatting differs from comfyctl's (2-space indent) at line {line}");
            return exit::FAILED;
        }
    }
    println!("{file}: normalized");
    exit::OK
}

/// `comfyctl verify`
pub fn verify_cmd(args: &VerifyArgs) -> Result<i32> {
    let reporter = Reporter::new(args.json, 0);
    let table = load_names(args.names.as_deref())?;
    let schema = crate::schema::load(&args.schema, &reporter)?;
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

/// `comfyctl convert`
pub fn convert_cmd(args: &ConvertArgs) -> Result<i32> {
    let reporter = Reporter::new(false, 0);
    let Some(schema) = crate::schema::load(&args.schema, &reporter)? else {
        return Err(Error::Usage(
            "convert needs the server's node schema: give --server URL or --object-info FILE, or run 'comfyctl schema pull --url URL' first".into(),
        ));
    };
    // Read like every other workflow input, so an unreadable file is the same usage error (exit 2).
    let (file, text) = read_source(&args.workflow)?;
    let ui: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Load(LoadError::Parse {
            file: file.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    })?;
    let (nodes, notes) = crate::convert::convert_seeded(&ui, &schema, &file, args.seed)?;
    for n in notes {
        reporter.warn(format!("{file}: {n}"));
    }
    let out = crate::workflow::to_pretty_string(&serde_json::Value::Object(nodes));
    match &args.output {
        Some(p) => write_atomic(p, out.as_bytes())?,
        None => print!("{out}"),
    }
    Ok(exit::OK)
}
