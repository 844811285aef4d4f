//! `comfyctl normalize`: rename node IDs to stable structural names and rewrite every link.

use crate::cli::NormalizeArgs;
use crate::error::{exit, Error, Result};
use crate::job::load_names;
use crate::load::document_from_text;
use crate::normalize;
use crate::outputs::write_atomic_with;
use crate::report::Reporter;
use crate::settings::SchemaFrom;
use crate::workflow::{read_source, Document};
use std::io::Write;
use std::path::Path;

/// `comfyctl normalize`
pub fn run(args: &NormalizeArgs) -> Result<i32> {
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
    let mut doc = document_from_text(
        &args.workflow,
        &file,
        &text,
        &SchemaFrom::resolve(&args.schema)?,
        &reporter,
    )?;
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

/// Streams `normalize`'s output to `path` (atomically, through [`write_atomic_with`]) or to
/// standard output, so a large workflow is never held in memory a second time as text.
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match path {
        Some(p) => write_atomic_with(p, write),
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            write(&mut out)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("writing standard output", e))
        }
    }
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
