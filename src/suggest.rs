//! "Did you mean": the closest known name to a misspelled one, for error messages that name the
//! fix (a node class, an input name, a model file).

/// The closest name among `names` (case-insensitive Jaro-Winkler ≥ 0.85), for "did you mean".
pub fn close_match<'a>(needle: &str, names: &[&'a str]) -> Option<&'a str> {
    let n = needle.to_lowercase();
    names
        .iter()
        .map(|c| (strsim::jaro_winkler(&n, &c.to_lowercase()), *c))
        .filter(|(s, _)| *s >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
