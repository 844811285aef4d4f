//! One problem found in a workflow, shaped so that a person can act on it.
//!
//! Every check in comfyctl (structural `verify`, schema-aware `verify`, a ComfyUI 400 response, a
//! failed RunPod job) ends up as a [`Diagnostic`]: *where* (file, node ID, `_meta.title`, class,
//! input), *what* is wrong and *how to fix it*. Keeping one type means the terminal rendering and the
//! `--json` rendering are the same everywhere, and scripts can rely on one shape.

use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is. Errors make `verify` exit 1; warnings only with `--strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: shown, never fails a run (e.g. the injection-point summary).
    Info,
    /// Suspicious but ComfyUI would accept it (e.g. no output node).
    Warning,
    /// ComfyUI would reject it, or comfyctl cannot work with it.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One located problem. Optional fields are omitted from JSON when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `missing_node`, `cycle`, `ui_format`.
    pub code: &'static str,
    /// The file the workflow came from (`-` is shown as `<stdin>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// 1-based line and column, for parse errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
    /// What to do about it. Empty when there is nothing sensible to suggest.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

impl Diagnostic {
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            file: None,
            node_id: None,
            title: None,
            class_type: None,
            input: None,
            line: None,
            column: None,
            message: message.into(),
            fix: String::new(),
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    pub fn info(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, code, message)
    }

    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn node(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    pub fn title(mut self, title: Option<impl Into<String>>) -> Self {
        self.title = title.map(Into::into);
        self
    }

    pub fn class(mut self, class_type: impl Into<String>) -> Self {
        self.class_type = Some(class_type.into());
        self
    }

    pub fn input(mut self, input: impl Into<String>) -> Self {
        self.input = Some(input.into());
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line:col: error[code]: node 6 "CLIP Text Encode (Positive)" (CLIPTextEncode) input 'clip': message`
/// followed by an indented `fix:` line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let (Some(l), Some(c)) = (self.line, self.column) {
                write!(f, ":{l}:{c}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        if let Some(id) = &self.node_id {
            write!(f, "node {id}")?;
            if let Some(t) = &self.title {
                write!(f, " \"{t}\"")?;
            }
            if let Some(c) = &self.class_type {
                write!(f, " ({c})")?;
            }
            if let Some(i) = &self.input {
                write!(f, " input '{i}'")?;
            }
            write!(f, ": ")?;
        } else if let Some(i) = &self.input {
            write!(f, "input '{i}': ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n    fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Counts errors in a list of diagnostics.
pub fn error_count(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}
