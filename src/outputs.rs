//! Saving output files: the one path every output takes, whatever brought it (`/view`, a
//! presigned result URL, base64 inside a RunPod answer) — streamed, size-checked against
//! Content-Length and the format's own length fields, sniffed, sanitized, atomically renamed and
//! never overwritten by surprise — and the one atomic writer for every other file comfyctl writes.
//!
//! A file is streamed into a temporary file *inside the output directory* (so the final rename is
//! atomic and never crosses file systems). When the last byte is in, its first bytes decide the
//! format and the extension, and it is renamed to its final name without replacing anything that
//! exists (`name-1.webp`, `name-2.webp`, ... unless `--overwrite`). Dropping an unfinished
//! [`PendingFile`] (Ctrl-C, timeout, network error) deletes the temporary file: no partial outputs.

pub mod base64;

use crate::error::{Error, Result};
use crate::media::{self, Media};
use crate::net::NetError;
use crate::redacted::Secrets;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The largest output file saved by default (a long 4K video is a few GB).
pub const DEFAULT_MAX_OUTPUT: u64 = 8 << 30;
/// A comfyctl temporary file older than this in an output directory is a leftover of a run that
/// was killed (a live download touches its file every few seconds), and is removed.
const STALE_PART: Duration = Duration::from_secs(15 * 60);

/// Where outputs go, and whether existing files may be replaced. The directory is created when
/// the first file arrives (a run that fails early leaves no empty folder), but whether it *can*
/// be written is proven at once, before anything is sent or paid for.
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    overwrite: bool,
    max_bytes: u64,
    created: OnceLock<()>,
    /// Files this run has saved: `--overwrite` replaces files of earlier runs, never a file of
    /// this run (two outputs with one name get `-1`, `-2`).
    written: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    /// Hash every saved file (for manifests).
    hashing: bool,
}

/// Where the bytes of one output come from.
pub enum Body<'a> {
    /// An HTTP answer being streamed (`/view`, a presigned result URL).
    Http {
        resp: reqwest::Response,
        /// `GET /view NAME`, for messages.
        what: String,
        /// The server as shown.
        server: String,
        secrets: &'a Secrets,
    },
    /// Base64 text inside a job's answer (optional `data:` prefix).
    Base64(&'a str),
}

/// Why an output was not saved. Nothing partial is left in any case.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Local trouble (disk full, permissions): the data was fine.
    #[error(transparent)]
    Local(Error),
    /// The transfer failed; a retry may work.
    #[error("{0}")]
    Net(NetError),
    /// Fewer bytes arrived than announced; a retry may work.
    #[error("{0}")]
    Incomplete(String),
    /// The data itself is wrong (not the claimed format, bad base64, empty, too large).
    #[error("{0}")]
    Invalid(String),
}

impl SaveError {
    /// Whether fetching the same output again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            SaveError::Net(e) => e.is_transient(),
            SaveError::Incomplete(_) => true,
            SaveError::Local(_) | SaveError::Invalid(_) => false,
        }
    }
}

/// Tracks the first and last bytes written, to spot a file that was cut short.
#[derive(Default)]
struct Ends {
    head: Vec<u8>,
    tail: Vec<u8>,
    len: u64,
}

impl Ends {
    fn push(&mut self, b: &[u8]) {
        if self.head.len() < 16 {
            let n = (16 - self.head.len()).min(b.len());
            self.head.extend_from_slice(&b[..n]);
        }
        self.tail
            .extend_from_slice(&b[b.len().saturating_sub(16)..]);
        if self.tail.len() > 16 {
            self.tail.drain(..self.tail.len() - 16);
        }
        self.len += b.len() as u64;
    }

    /// Why the file looks truncated, for formats whose ends say how long they are.
    fn truncation(&self) -> Option<String> {
        let h = &self.head;
        if h.len() >= 12 && &h[0..4] == b"RIFF" {
            let declared = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]])) + 8;
            if self.len < declared {
                return Some(format!(
                    "its RIFF header promises {declared} bytes but only {} arrived",
                    self.len
                ));
            }
        }
        let t = &self.tail;
        // Some encoders pad after the end marker: look for it in the last bytes.
        if h.starts_with(b"\xff\xd8\xff") && !t.windows(2).any(|w| w == b"\xff\xd9") {
            return Some("the JPEG has no end marker (FF D9)".into());
        }
        if (h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a")) && !t.contains(&b';') {
            return Some("the GIF has no trailer (3B) at its end".into());
        }
        if h.starts_with(b"\x89PNG\r\n\x1a\n")
            && !(self.tail.len() >= 8
                && &self.tail[self.tail.len() - 8..self.tail.len() - 4] == b"IEND")
        {
            return Some("the PNG has no IEND chunk at its end".into());
        }
        None
    }
}

/// One saved output, as reported to the user and in `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SavedFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// Sniffed format (`webp`, `png`, `mp4`, ...), or `unknown`.
    pub format: String,
    /// The node that produced it, when known (`null` otherwise).
    pub node: Option<String>,
    /// The name the server gave it.
    pub server_name: String,
    /// SHA-256 of the saved bytes (hex), computed while they streamed in when a manifest will
    /// record it (`null` with `--no-manifest`: hashing a large video costs CPU time).
    pub sha256: Option<String>,
}

impl OutputDir {
    /// Proves that `dir` can be written (the directory itself when it exists, else its nearest
    /// existing ancestor, with a probe file created and removed), and removes stale temporary
    /// files of comfyctl's own naming left there by a killed run. Creates nothing yet.
    pub fn new(dir: &Path, overwrite: bool) -> Result<Self> {
        let bad = |why: String| {
            Error::Usage(format!(
                "-o {}: {why}; choose another output directory with -o",
                dir.display()
            ))
        };
        let mut probe_in = dir.to_path_buf();
        loop {
            match std::fs::metadata(&probe_in) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => return Err(bad(format!("{} is not a directory", probe_in.display()))),
                Err(_) => match probe_in.parent() {
                    Some(p) if !p.as_os_str().is_empty() => probe_in = p.to_path_buf(),
                    _ => {
                        probe_in = PathBuf::from(".");
                        break;
                    }
                },
            }
        }
        tempfile::Builder::new()
            .prefix(".comfyctl-probe-")
            .tempfile_in(&probe_in)
            .map_err(|e| bad(format!("cannot write in {}: {e}", probe_in.display())))?;
        let exists = probe_in == dir;
        if exists {
            remove_stale_parts(dir);
        }
        let created = OnceLock::new();
        if exists {
            let _ = created.set(());
        }
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            overwrite,
            max_bytes: DEFAULT_MAX_OUTPUT,
            created,
            written: Default::default(),
            hashing: false,
        })
    }

    /// Hash every file saved here (the SHA-256 a manifest records).
    pub fn with_hashing(mut self, on: bool) -> Self {
        self.hashing = on;
        self
    }

    /// The largest file this directory accepts (`--max-output-size`).
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn ensure_created(&self) -> Result<()> {
        if self.created.get().is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            Error::io(
                format!("cannot create output directory {}", self.dir.display()),
                e,
            )
        })?;
        let _ = self.created.set(());
        Ok(())
    }

    /// Saves one output from `body`: the one path every output takes. Checks the announced size
    /// against the limit before the first byte, the bytes that arrived against Content-Length
    /// and against the format's own length fields (RIFF size, PNG IEND), and refuses an empty
    /// file; then sniffs, names and renames it into place.
    pub async fn save(
        &self,
        server_name: &str,
        node: Option<&str>,
        body: Body<'_>,
    ) -> std::result::Result<SavedFile, SaveError> {
        let too_large = |n: u64| {
            SaveError::Invalid(format!(
                "it is larger than the {} limit for one output (--max-output-size) ({n} bytes)",
                crate::report::human_bytes(self.max_bytes)
            ))
        };
        let mut ends = Ends::default();
        let mut file = self.create(server_name, node).map_err(SaveError::Local)?;
        match body {
            Body::Http {
                mut resp,
                what,
                server,
                secrets,
            } => {
                let expected = resp.content_length();
                if let Some(n) = expected.filter(|n| *n > self.max_bytes) {
                    return Err(too_large(n));
                }
                while let Some(chunk) = resp.chunk().await.map_err(|e| {
                    SaveError::Net(NetError::from_reqwest(&e, &what, &server, secrets))
                })? {
                    if ends.len + chunk.len() as u64 > self.max_bytes {
                        return Err(too_large(ends.len + chunk.len() as u64));
                    }
                    file.write_chunk(&chunk).map_err(SaveError::Local)?;
                    ends.push(&chunk);
                }
                if let Some(n) = expected {
                    if n != ends.len {
                        return Err(SaveError::Incomplete(format!(
                            "the download broke off after {} of {n} bytes",
                            ends.len
                        )));
                    }
                }
            }
            Body::Base64(text) => {
                let max = self.max_bytes;
                base64::decode_stream(text, |b| {
                    if ends.len + b.len() as u64 > max {
                        return Err(too_large(ends.len + b.len() as u64));
                    }
                    file.write_chunk(b).map_err(SaveError::Local)?;
                    ends.push(b);
                    Ok(())
                })
                .map_err(|e| match e {
                    base64::DecodeError::Invalid(m) => SaveError::Invalid(m),
                    base64::DecodeError::Sink(e) => e,
                })?;
            }
        }
        if ends.len == 0 {
            return Err(SaveError::Invalid("the data is empty".into()));
        }
        if let Some(t) = ends.truncation() {
            return Err(SaveError::Incomplete(format!(
                "the file is incomplete: {t}"
            )));
        }
        file.finish().map_err(|e| match e {
            Error::Failed(m) => SaveError::Invalid(m),
            other => SaveError::Local(other),
        })
    }

    /// Starts a file that the server called `server_name`.
    pub fn create(&self, server_name: &str, node: Option<&str>) -> Result<PendingFile> {
        self.ensure_created()?;
        let tmp = tempfile::Builder::new()
            .prefix(".comfyctl-")
            .suffix(".part")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(format!("cannot write in {}", self.dir.display()), e))?;
        Ok(PendingFile {
            tmp,
            dir: self.dir.clone(),
            overwrite: self.overwrite,
            written: self.written.clone(),
            server_name: server_name.to_string(),
            node: node.map(str::to_string),
            head: Vec::with_capacity(media::SNIFF_LEN),
            len: 0,
            hash: self.hashing.then(<sha2::Sha256 as sha2::Digest>::new),
        })
    }

    /// Saves a whole in-memory file.
    pub fn save_bytes(
        &self,
        server_name: &str,
        node: Option<&str>,
        bytes: &[u8],
    ) -> Result<SavedFile> {
        let mut f = self.create(server_name, node)?;
        f.write_chunk(bytes)?;
        f.finish()
    }
}

/// A file being written. Deleted on drop unless [`PendingFile::finish`] succeeded.
#[derive(Debug)]
pub struct PendingFile {
    tmp: tempfile::NamedTempFile,
    dir: PathBuf,
    overwrite: bool,
    written: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
    server_name: String,
    node: Option<String>,
    head: Vec<u8>,
    len: u64,
    /// SHA-256 of the bytes so far, when the directory was asked to hash (manifests).
    hash: Option<sha2::Sha256>,
}

impl PendingFile {
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        if self.head.len() < media::SNIFF_LEN {
            let take = (media::SNIFF_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.tmp
            .write_all(chunk)
            .map_err(|e| Error::io(format!("writing {}", self.server_name), e))?;
        if let Some(h) = &mut self.hash {
            sha2::Digest::update(h, chunk);
        }
        self.len += chunk.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the bytes, picks the final name and renames the file into place.
    pub fn finish(mut self) -> Result<SavedFile> {
        self.tmp
            .flush()
            .map_err(|e| Error::io(format!("writing {}", self.server_name), e))?;
        let sniffed = media::sniff(&self.head);
        let safe = sanitize_filename(&self.server_name);
        let name = match (sniffed, media::claimed_by_ext(&safe)) {
            (Some(m), _) => with_extension(&safe, m),
            (None, Some(claimed)) => {
                return Err(Error::Failed(format!(
                    "output '{}'{}: the server sent {} bytes that are not {} (they start with {}); nothing was saved",
                    self.server_name,
                    self.node.as_deref().map(|n| format!(" of node {n}")).unwrap_or_default(),
                    self.len,
                    claimed.name().to_uppercase(),
                    media::describe_start(&self.head)
                )))
            }
            (None, None) => safe,
        };
        let format = sniffed
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        // tempfile creates files readable by the owner only; outputs are ordinary files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = self
                .tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        let (stem, ext) = split_ext(&name);
        let mut k = 0u32;
        let mut tmp = self.tmp;
        loop {
            let candidate = if k == 0 {
                name.clone()
            } else {
                match ext {
                    Some(e) => format!("{stem}-{k}.{e}"),
                    None => format!("{stem}-{k}"),
                }
            };
            let path = self.dir.join(&candidate);
            // A file this run already saved is never replaced, even with --overwrite.
            let ours = self.written.lock().expect("not poisoned").contains(&path);
            if ours {
                k += 1;
                continue;
            }
            let result = if self.overwrite {
                tmp.persist(&path).map(|_| ())
            } else {
                tmp.persist_noclobber(&path).map(|_| ())
            };
            match result {
                Ok(()) => {
                    self.written
                        .lock()
                        .expect("not poisoned")
                        .insert(path.clone());
                    return Ok(SavedFile {
                        sha256: self.hash.map(|h| {
                            sha2::Digest::finalize(h)
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect()
                        }),
                        path,
                        bytes: self.len,
                        format,
                        node: self.node,
                        server_name: self.server_name,
                    });
                }
                Err(e)
                    if e.error.kind() == std::io::ErrorKind::AlreadyExists && !self.overwrite =>
                {
                    tmp = e.file;
                    k += 1;
                    if k > 100_000 {
                        return Err(Error::io(
                            format!("no free name for {name} in {}", self.dir.display()),
                            e.error,
                        ));
                    }
                }
                Err(e) => {
                    return Err(Error::io(format!("saving {}", path.display()), e.error));
                }
            }
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename), so a
/// reader never sees half a file and a failure leaves the old file as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced by a writer (streamed through a 64 kB buffer, so a
/// large workflow is never held in memory a second time as text). Errors name `path`, never the
/// temporary file.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    const BUF: usize = 1 << 16;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".comfyctl-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot write {} (in {})", path.display(), dir.display()),
                e,
            )
        })?;
    let mut out = std::io::BufWriter::with_capacity(BUF, tmp);
    write(&mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let tmp = out
        .into_inner()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.into_error()))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
}

/// [`write_atomic`] that never replaces an existing file: the content is written to a temporary
/// file beside `path` and linked into place only if `path` does not exist yet. `Ok(false)` (and
/// nothing written) when it exists.
pub fn write_atomic_new(path: &Path, bytes: &[u8]) -> Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".comfyctl-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| {
            Error::io(
                format!("cannot write {} (in {})", path.display(), dir.display()),
                e,
            )
        })?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.flush())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io(format!("writing {}", path.display()), e.error)),
    }
}

/// Removes `.comfyctl-*.part` files older than [`STALE_PART`] from `dir` (left by a run that was
/// killed mid-download; a live one is younger). Best effort.
fn remove_stale_parts(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(".comfyctl-") && name.ends_with(".part")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PART);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn split_ext(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

/// `name` with its extension fixed to match the sniffed format (`x.webp` holding a PNG →
/// `x.png`; an mp4 named `x.webp` → `x.mp4`; `x` → `x.png`).
fn with_extension(name: &str, m: Media) -> String {
    let (stem, ext) = split_ext(name);
    match ext {
        Some(e) if m.accepted_exts().contains(&e.to_ascii_lowercase().as_str()) => name.to_string(),
        Some(e) if media::claimed_by_ext(name).is_some() || e.len() <= 4 => {
            format!("{stem}.{}", m.ext())
        }
        _ => format!("{name}.{}", m.ext()),
    }
}

/// Makes a server-supplied name safe to create inside the output directory: only the last path
/// component (`/` and `\` both count), no control characters, no leading dots (so no `..`, no
/// hidden files), at most 200 bytes. An empty result becomes `output`.
pub fn sanitize_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_control() || c == ':' { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::new();
    for c in cleaned.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "output".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBP: &[u8] = b"RIFF\x10\0\0\0WEBPVP8X\0\0\0\0";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn sanitizes_hostile_names() {
        assert_eq!(sanitize_filename("../../x.webp"), "x.webp");
        assert_eq!(sanitize_filename("/etc/passwd"), "passwd");
        assert_eq!(sanitize_filename(".."), "output");
        assert_eq!(sanitize_filename("a\\b\\..\\c.png"), "c.png");
        assert_eq!(sanitize_filename("bad\nname\u{7}.png"), "bad_name_.png");
        assert_eq!(sanitize_filename(""), "output");
        assert_eq!(sanitize_filename(".hidden.png"), "hidden.png");
    }

    #[test]
    fn fixes_extension_and_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), false).unwrap();
        let a = out.save_bytes("clip_00001_.webp", Some("9"), WEBP).unwrap();
        assert_eq!(a.path.file_name().unwrap(), "clip_00001_.webp");
        let b = out.save_bytes("clip_00001_.webp", None, WEBP).unwrap();
        assert_eq!(b.path.file_name().unwrap(), "clip_00001_-1.webp");
        let c = out.save_bytes("wrong.webp", None, PNG).unwrap();
        assert_eq!(c.path.file_name().unwrap(), "wrong.png");
        assert_eq!(c.format, "png");
        let e = out
            .save_bytes("page.webp", None, b"<html>nope</html>")
            .unwrap_err();
        assert!(e.to_string().contains("not WEBP"), "{e}");
        // nothing partial left behind
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".part")));
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), false).unwrap();
        let f = out.save_bytes("a.png", None, PNG).unwrap();
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn overwrite_replaces_earlier_runs_files_but_never_this_runs() {
        let d = tempfile::tempdir().unwrap();
        OutputDir::new(d.path(), false)
            .unwrap()
            .save_bytes("a.png", None, PNG)
            .unwrap();
        let out = OutputDir::new(d.path(), true).unwrap();
        let b = out.save_bytes("a.png", None, PNG).unwrap();
        assert_eq!(b.path.file_name().unwrap(), "a.png");
        // Two outputs of one run with the same name (subfolders a/ and b/ on the server).
        let c = out.save_bytes("a.png", None, PNG).unwrap();
        assert_eq!(c.path.file_name().unwrap(), "a-1.png");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn the_directory_is_made_on_the_first_file_and_probed_before() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        let out = OutputDir::new(&sub, false).unwrap();
        assert!(!sub.exists());
        out.save_bytes("a.png", None, PNG).unwrap();
        assert!(sub.join("a.png").exists());
        let file = d.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = OutputDir::new(&file.join("x"), false).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn stale_parts_are_removed_and_fresh_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join(".comfyctl-old.part");
        let fresh = d.path().join(".comfyctl-new.part");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(t)
            .unwrap();
        OutputDir::new(d.path(), false).unwrap();
        assert!(!old.exists() && fresh.exists());
    }

    #[tokio::test]
    async fn base64_bodies_take_the_same_checks() {
        use ::base64::Engine as _;
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), false).unwrap();
        let mut png = PNG.to_vec();
        png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
        let b64 = ::base64::engine::general_purpose::STANDARD.encode(&png);
        let s = out.save("x.png", None, Body::Base64(&b64)).await.unwrap();
        assert_eq!(std::fs::read(&s.path).unwrap(), png);
        let cut = ::base64::engine::general_purpose::STANDARD.encode(PNG);
        let e = out
            .save("y.png", None, Body::Base64(&cut))
            .await
            .unwrap_err();
        assert!(matches!(e, SaveError::Incomplete(_)), "{e}");
        let e = out.save("z.png", None, Body::Base64("")).await.unwrap_err();
        assert!(matches!(e, SaveError::Invalid(_)), "{e}");
        let small = OutputDir::new(d.path(), false).unwrap().with_max_bytes(4);
        let e = small
            .save("w.png", None, Body::Base64(&b64))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--max-output-size"), "{e}");
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["x.png"]);
    }

    #[test]
    fn spots_truncated_riff_and_png() {
        let mut e = Ends::default();
        e.push(b"RIFF\x20\0\0\0WEBPVP8X");
        assert!(e.truncation().unwrap().contains("promises 40 bytes"));
        let mut p = Ends::default();
        p.push(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert!(p.truncation().is_some());
        p.push(b"\0\0\0\0IEND\xaeB`\x82");
        assert!(p.truncation().is_none());
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), false).unwrap();
        let mut f = out.create("x.webp", None).unwrap();
        f.write_chunk(WEBP).unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
