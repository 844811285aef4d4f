//! Writing a job's output files: streaming base64 decode and streaming downloads, both into the
//! shared [`OutputDir`] (sniffed extension, sanitized name, atomic, never overwriting).
//!
//! Why streaming: the base64 text already sits in the `/status` body; decoding it in 48 kB slices
//! straight into the file means a 100 MB video needs the body plus a few kB, never a second
//! decoded copy in memory.

use super::client::{describe_reqwest, Client};
use super::response::{OutputFile, Source};
use crate::error::{Error, Result};
use crate::outputs::{OutputDir, PendingFile, SavedFile};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};

/// Standard alphabet, padding optional (some encoders drop it).
const STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 characters decoded per step (a multiple of 4).
const STEP: usize = 64 * 1024;

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
        if h.starts_with(b"\x89PNG\r\n\x1a\n")
            && !(self.tail.len() >= 8
                && &self.tail[self.tail.len() - 8..self.tail.len() - 4] == b"IEND")
        {
            return Some("the PNG has no IEND chunk at its end".into());
        }
        None
    }
}

/// Decodes `text` (base64, optional `data:` prefix, whitespace allowed) into `file`.
fn decode_into(
    text: &str,
    file: &mut PendingFile,
    ends: &mut Ends,
) -> std::result::Result<(), String> {
    let mut s = text.trim();
    if s.starts_with("data:") {
        s = match s.find(',') {
            Some(i) => &s[i + 1..],
            None => return Err("a data: URI without a ',' before the data".into()),
        };
    }
    let engine = if s.bytes().take(4096).any(|b| b == b'-' || b == b'_') {
        &URL_SAFE
    } else {
        &STD
    };
    let bytes = s.as_bytes();
    let mut quad = Vec::with_capacity(STEP);
    let mut out = Vec::with_capacity(STEP / 4 * 3 + 3);
    let mut consumed = 0usize; // non-whitespace characters before `quad`
    let flush = |quad: &mut Vec<u8>,
                 out: &mut Vec<u8>,
                 consumed: &mut usize,
                 file: &mut PendingFile,
                 ends: &mut Ends|
     -> std::result::Result<(), String> {
        out.clear();
        engine.decode_vec(&quad[..], out).map_err(|e| match e {
            base64::DecodeError::InvalidByte(off, b) => format!(
                "invalid base64: byte {:?} at character {}",
                b as char,
                *consumed + off
            ),
            base64::DecodeError::InvalidLength(n) => format!(
                "truncated base64: {} characters is not a whole number of base64 groups",
                *consumed + n
            ),
            base64::DecodeError::InvalidLastSymbol(off, _) => format!(
                "truncated base64: it ends in the middle of a byte (character {})",
                *consumed + off
            ),
            other => format!("invalid base64 after character {}: {other}", *consumed),
        })?;
        *consumed += quad.len();
        quad.clear();
        file.write_chunk(out).map_err(|e| e.to_string())?;
        ends.push(out);
        Ok(())
    };
    for &b in bytes {
        if b.is_ascii_whitespace() {
            continue;
        }
        quad.push(b);
        if quad.len() == STEP {
            flush(&mut quad, &mut out, &mut consumed, file, ends)?;
        }
    }
    if !quad.is_empty() {
        flush(&mut quad, &mut out, &mut consumed, file, ends)?;
    }
    if ends.len == 0 {
        return Err("the data is empty".into());
    }
    Ok(())
}

/// Saves one announced file. `Err` names the file and what was wrong; nothing partial remains.
pub async fn save_one(client: &Client, dir: &OutputDir, f: &OutputFile<'_>) -> Result<SavedFile> {
    let fail = |why: String| {
        Error::Failed(format!(
            "output '{}' ({}): {why}; nothing was saved for it",
            f.name, f.place
        ))
    };
    match &f.source {
        Source::Base64(text) => {
            let mut file = dir.create(&f.name, None)?;
            let mut ends = Ends::default();
            decode_into(text, &mut file, &mut ends).map_err(&fail)?;
            if let Some(t) = ends.truncation() {
                return Err(fail(format!("the file is incomplete: {t}")));
            }
            file.finish()
        }
        Source::Url(url) => download(client, dir, f, url).await.map_err(fail),
        Source::WorkerPath(p) => Err(fail(format!(
            "the worker returned a path on its own disk ('{p}') instead of a URL: its S3 upload is not configured (set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint)"
        ))),
    }
}

/// Streams a URL into a file; retries a few times from scratch on transient failures (GET is
/// safe to repeat).
async fn download(
    client: &Client,
    dir: &OutputDir,
    f: &OutputFile<'_>,
    url: &str,
) -> std::result::Result<SavedFile, String> {
    let shown = url.split('?').next().unwrap_or(url);
    let mut attempt = 0;
    loop {
        let r = async {
            let mut resp = client.download(url).await?;
            let mut file = dir.create(&f.name, None).map_err(|e| e.to_string())?;
            let mut ends = Ends::default();
            let expected = resp.content_length();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("download broke off: {}", describe_reqwest(&e)))?
            {
                file.write_chunk(&chunk).map_err(|e| e.to_string())?;
                ends.push(&chunk);
            }
            if let Some(n) = expected {
                if n != ends.len {
                    return Err(format!(
                        "download broke off after {} of {n} bytes",
                        ends.len
                    ));
                }
            }
            if ends.len == 0 {
                return Err("the download is empty".into());
            }
            if let Some(t) = ends.truncation() {
                return Err(format!("the file is incomplete: {t}"));
            }
            file.finish().map_err(|e| e.to_string())
        }
        .await;
        match r {
            Ok(s) => return Ok(s),
            Err(e) if attempt < 3 && !e.starts_with("HTTP 4") && !e.contains("not ") => {
                attempt += 1;
                tokio::time::sleep(super::poll::backoff(attempt)).await;
                let _ = e;
            }
            Err(e) => return Err(format!("downloading {shown}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> std::result::Result<Vec<u8>, String> {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::new(d.path(), false).unwrap();
        let mut f = out.create("x", None).unwrap();
        let mut ends = Ends::default();
        decode_into(text, &mut f, &mut ends)?;
        let saved = f.finish().map_err(|e| e.to_string())?;
        Ok(std::fs::read(saved.path).unwrap())
    }

    #[test]
    fn decodes_in_steps_with_prefix_and_whitespace() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        assert_eq!(decode(&b64).unwrap(), data);
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().to_string() + "\n")
            .collect();
        assert_eq!(
            decode(&format!("data:video/mp4;base64,{wrapped}")).unwrap(),
            data
        );
        let unpadded = b64.trim_end_matches('=');
        assert_eq!(decode(unpadded).unwrap(), data);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any bytes, any wrapping and any step boundary: the streamed decode equals the input.
        #[test]
        fn streamed_decode_round_trips(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..160_000),
            wrap in 0usize..120,
        ) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            let text = if wrap < 4 {
                b64
            } else {
                b64.as_bytes()
                    .chunks(wrap)
                    .map(|c| std::str::from_utf8(c).unwrap().to_string() + "\r\n")
                    .collect()
            };
            proptest::prop_assert_eq!(decode(&text).unwrap(), data);
        }
    }

    #[test]
    fn rejects_bad_base64() {
        let e = decode("QUJD*EFG").unwrap_err();
        assert!(e.contains("invalid base64") && e.contains("'*'"), "{e}");
        let e = decode("QUJDR").unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(decode("").unwrap_err().contains("empty"));
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
}
