//! Node schemas (ComfyUI's `/object_info`): loading from a server, a file or the cache, and
//! schema-aware checks. (Being implemented: issue 5.)

use crate::cli::{SchemaArgs, SchemaSource};
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use crate::report::Reporter;
use serde_json::{Map, Value};

/// A server's node schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub classes: Map<String, Value>,
}

/// Loads a schema from `--server`, `--object-info`, or nothing.
pub fn load(src: &SchemaSource, _reporter: &Reporter) -> Result<Option<Schema>> {
    if src.server.is_none() && src.object_info.is_none() {
        return Ok(None);
    }
    Err(Error::Usage("schema support is not built yet".into()))
}

/// Schema-aware diagnostics for a node map.
pub fn check(_schema: &Schema, _nodes: &Map<String, Value>, _file: &str) -> Vec<Diagnostic> {
    Vec::new()
}

/// `comfyctl schema ...`
pub fn cmd(_args: &SchemaArgs) -> Result<i32> {
    Err(Error::Usage("schema support is not built yet".into()))
}
