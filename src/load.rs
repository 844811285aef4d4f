//! Loading a workflow from any source comfyctl reads (a file or standard input; API format,
//! RunPod request, `/prompt` body), converting a UI-format file to API format when a node schema
//! is at hand. Every command that reads a workflow comes through here.

use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::settings::SchemaFrom;
use crate::workflow::{read_source, Document, LoadError};
use std::path::Path;

/// Loads a workflow. A UI-format file is converted to API format when a schema is available
/// (`--server`, `--object-info`, or a cached schema), with a note on stderr; otherwise it is the
/// usual "export it with Export (API)" error.
pub fn load_document(path: &Path, schema: &SchemaFrom, reporter: &Reporter) -> Result<Document> {
    let (file, text) = read_source(path)?;
    document_from_text(path, &file, &text, schema, reporter)
}

/// [`load_document`] for text already read with [`read_source`].
pub fn document_from_text(
    path: &Path,
    file: &str,
    text: &str,
    schema: &SchemaFrom,
    reporter: &Reporter,
) -> Result<Document> {
    if let Some(doc) = manifest_workflow(text, file) {
        return doc;
    }
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
    if let Some(doc) = manifest_workflow(&text, &file) {
        return doc.map(|d| (d, false));
    }
    match Document::parse(&text, &file) {
        Err(LoadError::UiFormat { file }) => match schema {
            Some(schema) => convert_ui_text(path, file, &text, schema, reporter).map(|d| (d, true)),
            None => Err(LoadError::UiFormat { file }.into()),
        },
        other => Ok((other?, false)),
    }
}

/// A comfyctl manifest (`send` writes one beside its outputs) stands for the workflow it
/// recorded as sent (its `workflow` key).
fn manifest_workflow(text: &str, file: &str) -> Option<Result<Document>> {
    if !text.contains("\"manifest_version\"") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let w = v.get("workflow").filter(|w| w.is_object())?;
    v.get("manifest_version")?;
    Some(Document::from_value(w.clone(), file).map_err(Into::into))
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
