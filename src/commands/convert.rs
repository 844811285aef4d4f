//! `comfyctl convert`: a UI-format workflow to API format, using a server's node schema.

use crate::cli::ConvertArgs;
use crate::error::{exit, Error, Result};
use crate::outputs::write_atomic;
use crate::report::Reporter;
use crate::settings::SchemaFrom;
use crate::workflow::{read_source, LoadError};

/// `comfyctl convert`
pub fn run(args: &ConvertArgs) -> Result<i32> {
    let reporter = Reporter::new(false, 0);
    let Some(schema) = crate::schema::load(&SchemaFrom::resolve(&args.schema)?, &reporter)? else {
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
