//! Saving output files: sanitized names, sniffed formats, atomic writes, nothing overwritten by
//! surprise. Shared by the ComfyUI and RunPod paths.
//!
//! A file is streamed into a temporary file *inside the output directory* (so the final rename is
//! atomic and never crosses file systems). When the last byte is in, its first bytes decide the
//! format and the extension, and it is renamed to its final name without replacing anything that
//! exists (`name-1.webp`, `name-2.webp`, ... unless `--overwrite`). Dropping an unfinished
//! [`PendingFile`] (Ctrl-C, timeout, network error) deletes the temporary file: no partial outputs.

use crate::error::{Error, Result};
use crate::media::{self, Media};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where outputs go, and whether existing files may be replaced.
#[derive(Debug, Clone)]
pub struct OutputDir {
    dir: PathBuf,
    overwrite: bool,
}

/// One saved output, as reported to the user and in `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SavedFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// Sniffed format (`webp`, `png`, `mp4`, ...), or `unknown`.
    pub format: String,
    /// The node that produced it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The name the server gave it.
    pub server_name: String,
}

impl OutputDir {
    /// Creates the directory (and parents) if missing.
    pub fn new(dir: &Path, overwrite: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::io(
                format!("cannot create output directory {}", dir.display()),
                e,
            )
        })?;
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            overwrite,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts a file that the server called `server_name`.
    pub fn create(&self, server_name: &str, node: Option<&str>) -> Result<PendingFile> {
        let tmp = tempfile::Builder::new()
            .prefix(".comfyctl-")
            .suffix(".part")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(format!("cannot write in {}", self.dir.display()), e))?;
        Ok(PendingFile {
            tmp,
            dir: self.dir.clone(),
            overwrite: self.overwrite,
            server_name: server_name.to_string(),
            node: node.map(str::to_string),
            head: Vec::with_capacity(media::SNIFF_LEN),
            len: 0,
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
    server_name: String,
    node: Option<String>,
    head: Vec<u8>,
    len: u64,
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
            let result = if self.overwrite {
                tmp.persist(&path).map(|_| ())
            } else {
                tmp.persist_noclobber(&path).map(|_| ())
            };
            match result {
                Ok(()) => {
                    return Ok(SavedFile {
                        path,
                        bytes: self.len,
                        format,
                        node: self.node,
                        server_name: self.server_name,
                    })
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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".comfyctl-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.flush())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e.error))?;
    Ok(())
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
    fn overwrite_replaces() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), true).unwrap();
        out.save_bytes("a.png", None, PNG).unwrap();
        let b = out.save_bytes("a.png", None, PNG).unwrap();
        assert_eq!(b.path.file_name().unwrap(), "a.png");
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
