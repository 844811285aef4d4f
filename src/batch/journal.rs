//! The batch journal: an append-only JSON Lines file, fsynced after every record, written
//! *before* and *after* every remote step — so a batch killed at any moment (SIGKILL included)
//! can be re-run without submitting a job twice or losing a finished job's outputs.
//!
//! Records: `submitting` (ComfyUI: with the prompt ID comfyctl chose; RunPod: no ID yet),
//! `accepted` (the remote ID the server confirmed), `finished` (outputs with paths and sizes),
//! `failed` (the error). On resume, a job's last record decides what happens to it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// `submitting`, `accepted`, `finished`, `failed`.
    pub ev: String,
    /// The job's ID in the job file.
    pub id: String,
    /// The remote ID (prompt_id / RunPod job ID), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The target it went to (redacted URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `finished`: the saved outputs (`path`, `bytes`); `failed`: the error object.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    /// Seconds since the Unix epoch.
    pub t: f64,
}

/// What the journal says about one job.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// A submit started; `remote` is the ID comfyctl chose beforehand (ComfyUI), or `None`
    /// (RunPod: the submit may or may not have created a job — "unknown").
    Submitting {
        remote: Option<String>,
        target: Option<String>,
    },
    /// The server confirmed the job.
    Accepted {
        remote: String,
        target: Option<String>,
    },
    Finished {
        detail: Value,
    },
    Failed {
        detail: Value,
    },
}

/// An open journal, shared by every job of the batch.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Journal {
    /// Opens (creating) the journal at `path` and reads what it already holds. A torn last line
    /// (the process was killed mid-write) is ignored; any other unreadable line is an error.
    pub fn open(path: &Path) -> Result<(Journal, HashMap<String, State>)> {
        let mut states = HashMap::new();
        // Read once, as bytes: a record torn inside a multi-byte character (a non-ASCII output
        // path) must not make the whole journal unreadable. comfyctl writes valid UTF-8, so
        // only a torn tail can be invalid, and it is dropped below.
        let bytes = std::fs::read(path).unwrap_or_default();
        {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                let r: Record = match serde_json::from_str(l) {
                    Ok(r) => r,
                    Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
                    Err(e) => {
                        return Err(Error::Usage(format!(
                            "{}: line {}: not a comfyctl batch journal record ({e}); pass another --state FILE",
                            path.display(),
                            i + 1
                        )))
                    }
                };
                let s = match r.ev.as_str() {
                    "submitting" => State::Submitting {
                        remote: r.remote,
                        target: r.target,
                    },
                    "accepted" => match r.remote {
                        Some(remote) => State::Accepted {
                            remote,
                            target: r.target,
                        },
                        None => continue,
                    },
                    "finished" => State::Finished { detail: r.detail },
                    "failed" => State::Failed { detail: r.detail },
                    _ => continue,
                };
                states.insert(r.id, s);
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        }
        // A torn last line (never a whole record) is cut off, so the next record starts clean.
        {
            let b = &bytes;
            if !b.is_empty() && !b.ends_with(b"\n") {
                let keep = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(keep as u64))
                    .map_err(|e| {
                        Error::io(format!("repairing the batch journal {}", path.display()), e)
                    })?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening the batch journal {}", path.display()), e))?;
        Ok((
            Journal {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            states,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk before returning: the remote step it announces
    /// happens only after this.
    pub fn append(
        &self,
        ev: &str,
        id: &str,
        remote: Option<&str>,
        target: Option<&str>,
        detail: Value,
    ) -> Result<()> {
        let r = Record {
            ev: ev.to_string(),
            id: id.to_string(),
            remote: remote.map(str::to_string),
            target: target.map(str::to_string),
            detail,
            t: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        };
        let mut line = serde_json::to_vec(&r).expect("serializable");
        line.push(b'\n');
        let mut f = self.file.lock().expect("not poisoned");
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| {
            Error::io(
                format!("writing the batch journal {}", self.path.display()),
                e,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_the_last_one_wins() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        {
            let (j, s) = Journal::open(&p).unwrap();
            assert!(s.is_empty());
            j.append(
                "submitting",
                "a",
                Some("p-1"),
                Some("http://h"),
                Value::Null,
            )
            .unwrap();
            j.append("accepted", "a", Some("p-1"), Some("http://h"), Value::Null)
                .unwrap();
            j.append("submitting", "b", None, None, Value::Null)
                .unwrap();
            j.append(
                "finished",
                "c",
                Some("x"),
                None,
                serde_json::json!([{"path": "o.webp"}]),
            )
            .unwrap();
        }
        // A torn last line, as a SIGKILL mid-write leaves it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"ev\":\"fin")
            .unwrap();
        let (j, s) = Journal::open(&p).unwrap();
        assert_eq!(
            s["a"],
            State::Accepted {
                remote: "p-1".into(),
                target: Some("http://h".into())
            }
        );
        assert_eq!(
            s["b"],
            State::Submitting {
                remote: None,
                target: None
            }
        );
        assert!(matches!(s["c"], State::Finished { .. }));
        j.append(
            "failed",
            "b",
            None,
            None,
            serde_json::json!({"kind": "failed"}),
        )
        .unwrap();
        let (_, s) = Journal::open(&p).unwrap();
        assert!(matches!(s["b"], State::Failed { .. }));
    }

    #[test]
    fn a_record_torn_inside_a_multibyte_character_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        {
            let (j, _) = Journal::open(&p).unwrap();
            j.append("accepted", "a", Some("p-1"), None, Value::Null)
                .unwrap();
        }
        let torn = "{\"ev\":\"finished\",\"id\":\"b\",\"detail\":[{\"path\":\"füchse/é".as_bytes();
        let torn = &torn[..torn.len() - 1]; // cut inside the two bytes of 'é'
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(torn)
            .unwrap();
        let (_, s) = Journal::open(&p).unwrap();
        assert_eq!(
            s["a"],
            State::Accepted {
                remote: "p-1".into(),
                target: None
            }
        );
        assert!(!s.contains_key("b"));
        assert!(std::fs::read(&p).unwrap().ends_with(b"\n"));
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        std::fs::write(&p, "hello\nworld\n").unwrap();
        assert!(Journal::open(&p).is_err());
    }
}
