//! UI-format → API-format conversion, following ComfyUI's frontend. (Being implemented: issue 5.)

use crate::error::{Error, Result};
use crate::schema::Schema;
use serde_json::{Map, Value};

/// Converts a UI-format workflow to an API-format node map.
pub fn convert(_ui: &Value, _schema: &Schema, file: &str) -> Result<Map<String, Value>> {
    Err(Error::Usage(format!(
        "{file}: UI conversion is not built yet"
    )))
}
