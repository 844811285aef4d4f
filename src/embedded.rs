//! Workflows embedded in ComfyUI's outputs: the API prompt (and the UI workflow) that ComfyUI
//! writes into the images and videos it saves, read back so that an output file can stand in for
//! the workflow that made it.
//!
//! Where ComfyUI puts them (checked against its source and against real files it wrote):
//! - **PNG** (`SaveImage`, `nodes.py`): Pillow `PngInfo.add_text("prompt", json)` and one
//!   `add_text(key, json)` per `extra_pnginfo` key (`workflow`), i.e. `tEXt` chunks before the
//!   image data (`zTXt`/`iTXt` when another tool re-saved them; both are read too).
//!   `SaveAnimatedPNG` (`comfy_extras/nodes_images.py`) instead writes private `comf` chunks
//!   `key\0json` after the image data.
//! - **WEBP** (`SaveAnimatedWEBP`, `comfy_extras/nodes_images.py`): EXIF in the RIFF `EXIF` chunk,
//!   with Pillow's `Exif\0\0` prefix; IFD0 tag 0x0110 (Model) holds `prompt:{json}` and tags from
//!   0x010F (Make) downwards hold `workflow:{json}` (one tag per `extra_pnginfo` key).
//! - **MP4** (`SaveVideo`, `comfy_api/latest/_input_impl/video_types.py`): PyAV container metadata
//!   `prompt` / `workflow` written with `movflags=use_metadata_tags`, which FFmpeg stores as
//!   QuickTime `mdta` metadata: `moov/udta/meta` with `hdlr` (`mdta`), `keys` and `ilst`.
//!
//! Everything here is a pure function of the bytes (given as `Read + Seek`, so a file is read
//! only where the metadata is and image/video data is skipped with a seek, never read). Hostile
//! bytes give an [`EmbedError`], never a panic or an unbounded allocation: every size read from
//! the file is checked against the bytes actually there and against [`MAX_TEXT_BYTES`].

use serde_json::{Map, Value};
use std::io::{BufReader, Read, Seek, SeekFrom};

/// The largest embedded text (one JSON document) read, and the largest metadata block (EXIF chunk,
/// MP4 `keys`/`ilst`) read to find it. A UI workflow of a few thousand nodes is a few MiB.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// How many bytes [`sniff`] needs to recognise every container.
pub const SNIFF_BYTES: usize = 12;

/// The media containers ComfyUI embeds workflows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Png,
    Webp,
    Mp4,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Container::Png => "PNG",
            Container::Webp => "WEBP",
            Container::Mp4 => "MP4",
        }
    }
}

impl std::fmt::Display for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a media file carries: the raw JSON texts, exactly as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Embedded {
    /// The API-format prompt ComfyUI ran (`prompt`).
    pub prompt: Option<String>,
    /// The UI-format workflow the front end sent along (`workflow` in `extra_pnginfo`).
    pub workflow: Option<String>,
}

impl Embedded {
    fn set(&mut self, key: &str, text: String) {
        match key {
            "prompt" if self.prompt.is_none() => self.prompt = Some(text),
            "workflow" if self.workflow.is_none() => self.workflow = Some(text),
            _ => {}
        }
    }

    fn complete(&self) -> bool {
        self.prompt.is_some() && self.workflow.is_some()
    }
}

/// Why a media file's metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid {container} file: {reason}")]
    Malformed {
        container: Container,
        reason: String,
    },
}

fn malformed(container: Container, reason: impl Into<String>) -> EmbedError {
    EmbedError::Malformed {
        container,
        reason: reason.into(),
    }
}

/// Recognises a container from its first bytes ([`SNIFF_BYTES`] suffice). JSON never starts
/// like any of these, so a workflow file is never mistaken for media.
pub fn sniff(head: &[u8]) -> Option<Container> {
    const PNG_SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if head.starts_with(PNG_SIG) {
        Some(Container::Png)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Container::Webp)
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        Some(Container::Mp4)
    } else {
        None
    }
}

/// Reads the embedded texts from a whole file in memory. `Ok(None)`: not a media file comfyctl
/// knows (the caller reads it as JSON).
pub fn extract(bytes: &[u8]) -> Result<Option<(Container, Embedded)>, EmbedError> {
    let Some(kind) = sniff(bytes) else {
        return Ok(None);
    };
    extract_from(kind, std::io::Cursor::new(bytes)).map(|e| Some((kind, e)))
}

/// Reads the embedded texts of a file already recognised as `kind`, from its start.
pub fn extract_from<R: Read + Seek>(kind: Container, r: R) -> Result<Embedded, EmbedError> {
    match kind {
        Container::Png => png_texts(r),
        Container::Webp => webp_texts(r),
        Container::Mp4 => mp4_texts(r),
    }
}

/// Keeps only what is part of an API-format workflow in each node (`inputs`, `class_type`,
/// `_meta`): ComfyUI adds keys of its own to the prompt it embeds (`is_changed`, the cache key
/// of nodes such as `LoadImage`), and those must not be sent back or show up in a diff.
pub fn strip_runtime_keys(nodes: &mut Map<String, Value>) {
    for node in nodes.values_mut() {
        if let Value::Object(o) = node {
            o.retain(|k, _| matches!(k.as_str(), "inputs" | "class_type" | "_meta"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PNG: the `png` crate reads the chunks up to the image data (where Pillow writes text chunks),
// checks CRCs and inflates zTXt/iTXt with a limit.

fn png_texts<R: Read + Seek>(mut r: R) -> Result<Embedded, EmbedError> {
    let bad = |e: png::DecodingError| match e {
        png::DecodingError::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            EmbedError::Io(e)
        }
        png::DecodingError::IoError(_) => malformed(Container::Png, "the file is truncated"),
        other => malformed(Container::Png, other.to_string()),
    };
    let limits = png::Limits {
        bytes: MAX_TEXT_BYTES,
    };
    let reader = png::Decoder::new_with_limits(BufReader::new(&mut r), limits)
        .read_info()
        .map_err(bad)?;
    let info = reader.info();
    let mut found = Embedded::default();
    for t in &info.uncompressed_latin1_text {
        found.set(&t.keyword, t.text.clone());
    }
    for t in &info.utf8_text {
        if is_wanted(&t.keyword) {
            let mut t = t.clone();
            t.decompress_text_with_limit(MAX_TEXT_BYTES).map_err(bad)?;
            found.set(&t.keyword, t.get_text().map_err(bad)?);
        }
    }
    for t in &info.compressed_latin1_text {
        if is_wanted(&t.keyword) {
            let mut t = t.clone();
            t.decompress_text_with_limit(MAX_TEXT_BYTES).map_err(bad)?;
            found.set(&t.keyword, t.get_text().map_err(bad)?);
        }
    }
    drop(reader);
    if found.prompt.is_none() {
        // Not before the image data: look after it (`SaveAnimatedPNG`).
        png_trailing_texts(&mut r, &mut found)?;
    }
    Ok(found)
}

/// `SaveAnimatedPNG` writes its metadata as private `comf` chunks (`key\0json`, Latin-1) after
/// the image data, which the `png` crate neither reaches in `read_info` nor exposes (it skips
/// unknown chunks). A chunk walk from the start that seeks over every other chunk, checks the
/// CRC of the chunks it reads, and stops at `IEND`; `tEXt` after the image data is read too.
fn png_trailing_texts<R: Read + Seek>(r: &mut R, found: &mut Embedded) -> Result<(), EmbedError> {
    const C: Container = Container::Png;
    r.seek(SeekFrom::Start(8))?;
    loop {
        let mut h = [0u8; 8];
        read_exact_or(r, &mut h, C)?;
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if len > i32::MAX as u32 {
            return Err(malformed(C, "a chunk length over 2^31-1"));
        }
        let kind = [h[4], h[5], h[6], h[7]];
        match &kind {
            b"IEND" => return Ok(()),
            b"comf" | b"tEXt" => {
                let data = read_block(r, u64::from(len), C)?;
                let mut crc = [0u8; 4];
                read_exact_or(r, &mut crc, C)?;
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&kind);
                hasher.update(&data);
                if hasher.finalize() != u32::from_be_bytes(crc) {
                    return Err(malformed(
                        C,
                        format!("CRC error in a '{}' chunk", String::from_utf8_lossy(&kind)),
                    ));
                }
                if let Some(nul) = data.iter().position(|&b| b == 0) {
                    let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
                    found.set(&latin1(&data[..nul]), latin1(&data[nul + 1..]));
                }
                if found.prompt.is_some() && found.workflow.is_some() {
                    return Ok(());
                }
            }
            _ => {
                r.seek(SeekFrom::Current(i64::from(len) + 4))?;
            }
        }
    }
}

fn is_wanted(key: &str) -> bool {
    matches!(key, "prompt" | "workflow")
}

// ---------------------------------------------------------------------------------------------
// WEBP: a hand-written RIFF chunk walk, then `kamadak-exif` for the EXIF (TIFF) block itself.
// Not `exif::Reader::read_from_container`: it hands the EXIF chunk over with Pillow's
// `Exif\0\0` prefix still on, which its TIFF parser then rejects, and it reads (rather than
// seeks over) the animation frames. The walk is a dozen lines with every size checked.

fn webp_texts<R: Read + Seek>(mut r: R) -> Result<Embedded, EmbedError> {
    const C: Container = Container::Webp;
    let mut head = [0u8; 12];
    read_exact_or(&mut r, &mut head, C)?;
    let riff_len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
    // The RIFF size counts from byte 8 and includes the "WEBP" form type.
    let end = 8 + riff_len;
    let mut pos = 12u64;
    while pos + 8 <= end {
        let mut ch = [0u8; 8];
        read_exact_or(&mut r, &mut ch, C)?;
        let size = u64::from(u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]));
        let body = pos + 8;
        if body + size > end {
            return Err(malformed(C, "a chunk runs past the end of the RIFF data"));
        }
        if &ch[0..4] == b"EXIF" {
            let data = read_block(&mut r, size, C)?;
            return exif_texts(&data);
        }
        // Chunks are padded to an even size.
        pos = body + size + (size & 1);
        r.seek(SeekFrom::Start(pos))?;
    }
    Ok(Embedded::default())
}

/// The `key:{json}` ASCII tags of IFD0 that ComfyUI writes (see the module docs).
fn exif_texts(data: &[u8]) -> Result<Embedded, EmbedError> {
    let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
    let exif = exif::Reader::new()
        .read_raw(tiff.to_vec())
        .map_err(|e| malformed(Container::Webp, format!("bad EXIF data: {e}")))?;
    let mut found = Embedded::default();
    for field in exif.fields() {
        if field.ifd_num != exif::In::PRIMARY {
            continue;
        }
        let exif::Value::Ascii(parts) = &field.value else {
            continue;
        };
        // One NUL-terminated string per tag; Pillow writes exactly one.
        let Some(text) = parts.first().and_then(|p| std::str::from_utf8(p).ok()) else {
            continue;
        };
        if let Some((key, json)) = text.split_once(':') {
            found.set(key, json.to_string());
        }
        if found.complete() {
            break;
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// MP4: a hand-written ISO-BMFF box walk. The Rust MP4 crates (`mp4`, `mp4parse`) expose only the
// iTunes-style `ilst` items they know (title, artist, ...), not the QuickTime `mdta` keys that
// FFmpeg writes for arbitrary tags such as `prompt`, and they parse every track's sample tables on
// the way. This walk reads box headers only and seeks over everything else (`mdat` included).

/// A box's payload: `[start, end)` in the file.
#[derive(Debug, Clone, Copy)]
struct BoxRange {
    start: u64,
    end: u64,
}

fn mp4_texts<R: Read + Seek>(mut r: R) -> Result<Embedded, EmbedError> {
    const C: Container = Container::Mp4;
    let file_len = r.seek(SeekFrom::End(0))?;
    let top = BoxRange {
        start: 0,
        end: file_len,
    };
    let mut found = Embedded::default();
    let Some(moov) = find_box(&mut r, top, b"moov")? else {
        return Err(malformed(
            C,
            "no 'moov' box (not a video, or the file is truncated)",
        ));
    };
    // FFmpeg: moov/udta/meta; some writers put `meta` straight in `moov`.
    let mut metas = Vec::new();
    if let Some(udta) = find_box(&mut r, moov, b"udta")? {
        metas.extend(find_box(&mut r, udta, b"meta")?);
    }
    metas.extend(find_box(&mut r, moov, b"meta")?);
    for meta in metas {
        mdta_texts(&mut r, meta, &mut found)?;
        if found.complete() {
            break;
        }
    }
    Ok(found)
}

/// Reads `keys` + `ilst` of one `meta` box into `found`.
fn mdta_texts<R: Read + Seek>(
    r: &mut R,
    mut meta: BoxRange,
    found: &mut Embedded,
) -> Result<(), EmbedError> {
    const C: Container = Container::Mp4;
    // ISO `meta` is a full box (4 bytes of version and flags before its children); QuickTime's
    // is not. Tell them apart by where the first child's type is.
    if meta.end - meta.start >= 8 {
        r.seek(SeekFrom::Start(meta.start))?;
        let mut probe = [0u8; 8];
        read_exact_or(r, &mut probe, C)?;
        if &probe[4..8] != b"hdlr" {
            meta.start += 4;
        }
    }
    let (Some(keys), Some(ilst)) = (find_box(r, meta, b"keys")?, find_box(r, meta, b"ilst")?)
    else {
        return Ok(());
    };
    let keys = read_range(r, keys)?;
    let names = parse_keys(&keys)?;
    let ilst = read_range(r, ilst)?;
    // ilst children: box type = 1-based index into `keys`; each holds a `data` box.
    let mut pos = 0usize;
    while pos + 8 <= ilst.len() {
        let (body, next) = box_at(&ilst, pos)?;
        let index = u32::from_be_bytes(ilst[pos + 4..pos + 8].try_into().expect("4 bytes"));
        pos = next;
        let Some(name) = (index as usize).checked_sub(1).and_then(|i| names.get(i)) else {
            continue;
        };
        if !is_wanted(name) {
            continue;
        }
        let item = &ilst[body..next];
        let mut p = 0usize;
        while p + 8 <= item.len() {
            let (dbody, dnext) = box_at(item, p)?;
            if &item[p + 4..p + 8] == b"data" && dnext - dbody >= 8 {
                // type indicator (1 = UTF-8), locale, then the value.
                let value = &item[dbody + 8..dnext];
                let text = std::str::from_utf8(value)
                    .map_err(|_| malformed(C, format!("metadata '{name}' is not UTF-8")))?;
                found.set(name, text.to_string());
                break;
            }
            p = dnext;
        }
    }
    Ok(())
}

/// The key names of a `keys` box payload, in order.
fn parse_keys(keys: &[u8]) -> Result<Vec<String>, EmbedError> {
    const C: Container = Container::Mp4;
    if keys.len() < 8 {
        return Err(malformed(C, "a 'keys' box too short for its header"));
    }
    let count = u32::from_be_bytes(keys[4..8].try_into().expect("4 bytes")) as usize;
    let mut names = Vec::with_capacity(count.min(1024));
    let mut pos = 8usize;
    for _ in 0..count {
        let Some(h) = keys.get(pos..pos + 8) else {
            return Err(malformed(C, "a 'keys' box with fewer keys than it says"));
        };
        let size = u32::from_be_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
        let Some(name) = size
            .checked_sub(8)
            .and_then(|n| keys.get(pos + 8..(pos + 8).checked_add(n)?))
        else {
            return Err(malformed(C, "a key runs past the end of the 'keys' box"));
        };
        names.push(String::from_utf8_lossy(name).into_owned());
        pos += size;
    }
    Ok(names)
}

/// The payload and the end of the box at `pos` in an in-memory box list.
fn box_at(buf: &[u8], pos: usize) -> Result<(usize, usize), EmbedError> {
    let bad = || malformed(Container::Mp4, "a metadata box runs past its parent");
    let size = u32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
    let (body, end) = match size {
        0 => (pos + 8, buf.len()),
        1 => {
            let large = buf.get(pos + 8..pos + 16).ok_or_else(bad)?;
            let large = u64::from_be_bytes(large.try_into().expect("8 bytes"));
            let large = usize::try_from(large).map_err(|_| bad())?;
            (pos + 16, pos.checked_add(large).ok_or_else(bad)?)
        }
        s => (pos + 8, pos.checked_add(s).ok_or_else(bad)?),
    };
    if end < body || end > buf.len() {
        return Err(bad());
    }
    Ok((body, end))
}

/// The first child box of type `kind` inside `parent`, seeking over the others.
fn find_box<R: Read + Seek>(
    r: &mut R,
    parent: BoxRange,
    kind: &[u8; 4],
) -> Result<Option<BoxRange>, EmbedError> {
    const C: Container = Container::Mp4;
    let mut pos = parent.start;
    while parent.end.saturating_sub(pos) >= 8 {
        r.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 8];
        read_exact_or(r, &mut h, C)?;
        let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        let (start, end) = match size {
            0 => (pos + 8, parent.end),
            1 => {
                let mut l = [0u8; 8];
                read_exact_or(r, &mut l, C)?;
                let large = u64::from_be_bytes(l);
                (pos + 16, pos.saturating_add(large))
            }
            s => (pos + 8, pos + s),
        };
        if end < start || end > parent.end {
            return Err(malformed(
                C,
                format!(
                    "box '{}' runs past its parent (the file is truncated?)",
                    String::from_utf8_lossy(&h[4..8])
                ),
            ));
        }
        if &h[4..8] == kind {
            return Ok(Some(BoxRange { start, end }));
        }
        pos = end;
    }
    Ok(None)
}

fn read_range<R: Read + Seek>(r: &mut R, b: BoxRange) -> Result<Vec<u8>, EmbedError> {
    r.seek(SeekFrom::Start(b.start))?;
    read_block(r, b.end - b.start, Container::Mp4)
}

// ---------------------------------------------------------------------------------------------

/// Reads exactly `len` bytes (at most [`MAX_TEXT_BYTES`]) without trusting `len` for the
/// allocation: a header claiming 4 GiB in a 3 KiB file is an error, not an allocation.
fn read_block<R: Read>(r: &mut R, len: u64, c: Container) -> Result<Vec<u8>, EmbedError> {
    if len > MAX_TEXT_BYTES as u64 {
        return Err(malformed(
            c,
            format!("a metadata block of {len} bytes (more than comfyctl reads)"),
        ));
    }
    let mut buf = Vec::new();
    r.by_ref().take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(malformed(c, "the file is truncated"));
    }
    Ok(buf)
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], c: Container) -> Result<(), EmbedError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed(c, "the file is truncated")
        } else {
            EmbedError::Io(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBP: &[u8] = include_bytes!("../tests/fixtures/runpod_output.webp");

    #[test]
    fn sniffs_containers_and_not_json() {
        assert_eq!(sniff(WEBP), Some(Container::Webp));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
            Some(Container::Png)
        );
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0\x02\0"), Some(Container::Mp4));
        assert_eq!(sniff(b"{\"1\": {}}"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF"), None);
    }

    #[test]
    fn reads_the_prompt_of_the_real_webp() {
        let (kind, e) = extract(WEBP).unwrap().unwrap();
        assert_eq!(kind, Container::Webp);
        let prompt: Value = serde_json::from_str(e.prompt.as_deref().unwrap()).unwrap();
        assert_eq!(prompt["save_webp_1"]["class_type"], "SaveAnimatedWEBP");
        assert_eq!(
            prompt["load_image_1"]["inputs"]["image"],
            "peer_rp_input.png"
        );
        // The RunPod worker sends no UI workflow.
        assert_eq!(e.workflow, None);
    }

    #[test]
    fn strips_keys_comfyui_adds() {
        let (_, e) = extract(WEBP).unwrap().unwrap();
        let mut v: Value = serde_json::from_str(e.prompt.as_deref().unwrap()).unwrap();
        assert!(v["load_image_1"].get("is_changed").is_some());
        strip_runtime_keys(v.as_object_mut().unwrap());
        let keys: Vec<&str> = v["load_image_1"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["class_type", "inputs", "_meta"]);
    }

    /// `SaveAnimatedPNG`'s `comf` chunks come after the image data; their CRC is checked.
    #[test]
    fn comf_chunks_after_the_image_data() {
        let apng: &[u8] = include_bytes!("../tests/fixtures/readback/comfyui_8x8_animated.png");
        let (_, e) = extract(apng).unwrap().unwrap();
        assert!(e.prompt.unwrap().contains("SaveAnimatedPNG"));
        assert!(e.workflow.unwrap().starts_with("{\"last_node_id\""));
        let mut bad = apng.to_vec();
        let at = bad.windows(4).position(|w| w == b"comf").unwrap();
        bad[at + 20] ^= 1;
        let err = extract(&bad).unwrap_err().to_string();
        assert!(err.contains("CRC error in a 'comf' chunk"), "{err}");
    }

    #[test]
    fn webp_without_exif_has_nothing() {
        // A RIFF with one unrelated chunk.
        let data = b"RIFF\x14\0\0\0WEBPVP8X\x06\0\0\0\0\0\0\0\0\0";
        assert_eq!(extract(data).unwrap().unwrap().1, Embedded::default());
    }

    #[test]
    fn lying_sizes_are_errors_not_allocations() {
        let mut data = WEBP.to_vec();
        // The EXIF chunk claims 4 GiB.
        let at = data.windows(4).position(|w| w == b"EXIF").unwrap();
        data[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        data[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(extract(&data), Err(EmbedError::Malformed { .. })));
    }

    /// A PNG written here with tEXt, zTXt and iTXt chunks: each kind is found.
    #[test]
    fn png_text_chunks_of_every_kind() {
        for kind in 0..3 {
            let mut out = Vec::new();
            {
                let mut enc = png::Encoder::new(&mut out, 1, 1);
                enc.set_color(png::ColorType::Grayscale);
                match kind {
                    0 => enc
                        .add_text_chunk("prompt".into(), "{\"a\":1}".into())
                        .unwrap(),
                    1 => enc
                        .add_ztxt_chunk("prompt".into(), "{\"a\":1}".into())
                        .unwrap(),
                    _ => enc
                        .add_itxt_chunk("prompt".into(), "{\"a\":1}".into())
                        .unwrap(),
                }
                enc.add_text_chunk("workflow".into(), "{\"nodes\":[]}".into())
                    .unwrap();
                let mut w = enc.write_header().unwrap();
                w.write_image_data(&[0]).unwrap();
            }
            let (c, e) = extract(&out).unwrap().unwrap();
            assert_eq!(c, Container::Png);
            assert_eq!(e.prompt.as_deref(), Some("{\"a\":1}"), "kind {kind}");
            assert_eq!(e.workflow.as_deref(), Some("{\"nodes\":[]}"));
        }
    }

    #[test]
    fn mp4_keys_and_ilst() {
        fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            v
        }
        let mut keys = vec![0, 0, 0, 0, 0, 0, 0, 2];
        for k in [&b"encoder"[..], b"prompt"] {
            keys.extend(((k.len() + 8) as u32).to_be_bytes());
            keys.extend(b"mdta");
            keys.extend(k);
        }
        let data = |s: &str| {
            bx(
                b"data",
                &[&[0, 0, 0, 1, 0, 0, 0, 0][..], s.as_bytes()].concat(),
            )
        };
        let ilst = [
            bx(&1u32.to_be_bytes(), &data("Lavf")),
            bx(&2u32.to_be_bytes(), &data("{\"p\":2}")),
        ]
        .concat();
        let hdlr = bx(b"hdlr", &[&[0u8; 8][..], b"mdta", &[0u8; 13]].concat());
        let meta = bx(
            b"meta",
            &[
                &[0u8; 4][..],
                &hdlr,
                &bx(b"keys", &keys),
                &bx(b"ilst", &ilst),
            ]
            .concat(),
        );
        let moov = bx(b"moov", &bx(b"udta", &meta));
        let file = [bx(b"ftyp", b"isom\0\0\x02\0"), bx(b"mdat", &[0; 100]), moov].concat();
        let (c, e) = extract(&file).unwrap().unwrap();
        assert_eq!(c, Container::Mp4);
        assert_eq!(e.prompt.as_deref(), Some("{\"p\":2}"));
        assert_eq!(e.workflow, None);
        // Every truncation is a typed error (never a panic, never a silent success).
        for n in 12..file.len() {
            assert!(extract(&file[..n]).is_err(), "truncated at {n}");
        }
    }
}
