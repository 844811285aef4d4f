//! Secrets that never print themselves, and the one scrubber every printed string passes.
//!
//! API keys, header values and URL passwords live in [`Secret`]; its `Debug` and `Display` say
//! `(redacted)`, so a `{:?}` of a request builder, an error message or `-vv` logging can never
//! leak it. The only way out is [`Secret::expose`], which is greppable.
//!
//! [`Secrets`] is the set of every secret one run holds; [`Secrets::scrub`] removes them from
//! text that came back from a server (an echoed header, a token in an error body). URLs are shown
//! only through [`display_url`], which drops userinfo and masks secret-looking query values.

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
    /// bodies that might echo a header back. Secrets shorter than 4 bytes are not scrubbed: they
    /// would mangle ordinary text and protect nothing.
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

/// Every secret a run holds (API key, URL password, its Basic token, header values).
#[derive(Clone, Default, Debug)]
pub struct Secrets(Vec<Secret>);

impl Secrets {
    pub fn new() -> Self {
        Secrets(Vec::new())
    }

    pub fn add(&mut self, s: Secret) {
        if s.0.len() >= 4 && !self.0.contains(&s) {
            // Longest first, so a token that contains a shorter secret is removed whole.
            self.0.push(s);
            self.0.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        }
    }

    pub fn extend(&mut self, other: &Secrets) {
        for s in &other.0 {
            self.add(s.clone());
        }
    }

    /// `text` with every secret replaced by `(redacted)`.
    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        for sec in &self.0 {
            s = sec.scrub(&s);
        }
        s
    }
}

/// Query parameter names whose values are treated as secrets when a URL is shown.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "api_key",
    "apikey",
    "access_token",
    "auth",
    "password",
    "secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// A URL as it may be shown to a person: no userinfo, secret-looking query values masked.
/// Text that does not parse as a URL has anything between `//` and the last `@` removed.
pub fn display_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        // `user:pw@host:port` parses with scheme `user`: treat what is not a web URL as text.
        Ok(u) if !matches!(u.scheme(), "http" | "https" | "ws" | "wss") => {
            redact_userinfo_text(raw)
        }
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            if u.query().is_some() {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                        (
                            k.into_owned(),
                            if secret {
                                "(redacted)".to_string()
                            } else {
                                v.into_owned()
                            },
                        )
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            let s = u.to_string();
            // Keep the user's form: no trailing slash added to a bare host.
            if !raw.trim().ends_with('/') && u.path() == "/" && u.query().is_none() {
                s.trim_end_matches('/').to_string()
            } else {
                s
            }
        }
        Err(_) => redact_userinfo_text(raw),
    }
}

/// Removes anything between `//` and the last `@` of text that is not a parsable URL.
fn redact_userinfo_text(s: &str) -> String {
    match (s.find("//"), s.rfind('@')) {
        (Some(a), Some(b)) if b > a => format!("{}(redacted)@{}", &s[..a + 2], &s[b + 1..]),
        (None, Some(b)) => format!("(redacted)@{}", &s[b + 1..]),
        _ => s.to_string(),
    }
}

/// Escapes control characters (ESC, BEL, CR, newlines, …) in a string that came from a server
/// before it reaches a terminal: `\n` becomes the two characters `\n`, others `\u{1b}`.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Text for a terminal: control characters escaped (ESC, BEL, CR, …) except line feeds and
/// tabs, so a server's string can neither move the cursor, set the title nor forge a line start.
/// The one filter every line comfyctl prints to standard error passes.
pub fn for_terminal(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            '\r' => "\\r".to_string(),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// A value quoted for a POSIX shell when it needs it, for commands printed to be pasted.
/// Control characters become `$'\xHH'` escapes, so the printed command shows them plainly.
pub fn shell_quote(s: &str) -> String {
    if s.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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

    #[test]
    fn secrets_scrub_longest_first() {
        let mut set = Secrets::new();
        set.add(Secret::new("pass"));
        set.add(Secret::new("user:pass-token"));
        assert_eq!(
            set.scrub("a user:pass-token b pass"),
            "a (redacted) b (redacted)"
        );
    }

    #[test]
    fn urls_lose_userinfo_and_secret_params() {
        assert_eq!(
            display_url("http://user:s3cret@127.0.0.1:8188"),
            "http://127.0.0.1:8188"
        );
        assert_eq!(
            display_url("https://me:p%2Bss@host/comfy/"),
            "https://host/comfy/"
        );
        let u = display_url("https://b.example/x.webp?X-Amz-Signature=abc&a=1");
        assert!(u.contains("a=1") && !u.contains("abc"), "{u}");
        assert_eq!(
            display_url("http://u:secret@[bad"),
            "http://(redacted)@[bad"
        );
        assert_eq!(
            display_url("u:secret@localhost:8188"),
            "(redacted)@localhost:8188"
        );
    }

    #[test]
    fn controls_and_quotes() {
        assert_eq!(
            escape_controls("a\nsaved /etc/passwd"),
            "a\\nsaved /etc/passwd"
        );
        assert_eq!(escape_controls("\u{1b}]0;x\u{7}"), "\\u{1b}]0;x\\u{7}");
        assert_eq!(shell_quote("job-1"), "job-1");
        assert_eq!(shell_quote("a b;rm"), "'a b;rm'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("j\u{1b}[2J"), "$'j\\x1b[2J'");
        assert_eq!(
            for_terminal("a\u{1b}]0;t\u{7}\nb\rc"),
            "a\\u{1b}]0;t\\u{7}\nb\\rc"
        );
    }
}
