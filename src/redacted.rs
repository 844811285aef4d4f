//! A secret that never prints itself.
//!
//! API keys live in [`Secret`]; its `Debug` and `Display` say `(redacted)`, so a `{:?}` of a
//! request builder, an error message or `-vv` logging can never leak it. The only way out is
//! [`Secret::expose`], which is greppable.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `(redacted)` — for server error
    /// bodies that might echo a header back.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "(redacted)")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("rpa_SECRET123");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(s.scrub("key rpa_SECRET123 here"), "key (redacted) here");
    }
}
