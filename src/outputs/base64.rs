//! Streaming base64 decoding: the text already sits in a `/status` body, so decoding it in 64 kB
//! steps straight into the output file means a 100 MB video needs the body plus a few kB, never a
//! second decoded copy in memory. Pure: decoded bytes go to a callback.

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

/// Why base64 text could not be decoded, or the sink refused the bytes.
#[derive(Debug)]
pub enum DecodeError<E> {
    /// The text is not valid base64 (the message says where).
    Invalid(String),
    /// The sink failed (disk full, size limit).
    Sink(E),
}

/// Decodes `text` (base64, optional `data:` prefix, whitespace allowed) in steps, handing each
/// decoded slice to `sink`. Returns the number of decoded bytes.
pub fn decode_stream<E>(
    text: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, DecodeError<E>> {
    let mut s = text.trim();
    if s.starts_with("data:") {
        s = match s.find(',') {
            Some(i) => &s[i + 1..],
            None => {
                return Err(DecodeError::Invalid(
                    "a data: URI without a ',' before the data".into(),
                ))
            }
        };
    }
    let engine = if s.bytes().take(4096).any(|b| b == b'-' || b == b'_') {
        &URL_SAFE
    } else {
        &STD
    };
    let mut quad = Vec::with_capacity(STEP);
    let mut out = Vec::with_capacity(STEP / 4 * 3 + 3);
    let mut consumed = 0usize; // non-whitespace characters before `quad`
    let mut total = 0u64;
    let mut flush = |quad: &mut Vec<u8>, consumed: &mut usize| -> Result<(), DecodeError<E>> {
        out.clear();
        engine.decode_vec(&quad[..], &mut out).map_err(|e| {
            DecodeError::Invalid(match e {
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
            })
        })?;
        *consumed += quad.len();
        quad.clear();
        total += out.len() as u64;
        sink(&out).map_err(DecodeError::Sink)
    };
    for &b in s.as_bytes() {
        if b.is_ascii_whitespace() {
            continue;
        }
        quad.push(b);
        if quad.len() == STEP {
            flush(&mut quad, &mut consumed)?;
        }
    }
    if !quad.is_empty() {
        flush(&mut quad, &mut consumed)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Vec<u8>, String> {
        let mut v = Vec::new();
        decode_stream::<()>(text, |b| {
            v.extend_from_slice(b);
            Ok(())
        })
        .map_err(|e| match e {
            DecodeError::Invalid(m) => m,
            DecodeError::Sink(()) => "sink".into(),
        })?;
        Ok(v)
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
        assert!(decode("").unwrap().is_empty());
    }
}
