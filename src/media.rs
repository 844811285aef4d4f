//! Media types by magic bytes. File names from servers lie (a PNG named `.webp`, an HTML error
//! page named `.webp`, an mp4 returned as an "image"), so the bytes decide.

/// A recognised media format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Webp,
    Png,
    Gif,
    Jpeg,
    Mp4,
    Mov,
    Webm,
    Flac,
    Wav,
    Ogg,
    Mp3,
    Glb,
}

impl Media {
    /// The extension comfyctl writes for this format.
    pub fn ext(self) -> &'static str {
        match self {
            Media::Webp => "webp",
            Media::Png => "png",
            Media::Gif => "gif",
            Media::Jpeg => "jpg",
            Media::Mp4 => "mp4",
            Media::Mov => "mov",
            Media::Webm => "webm",
            Media::Flac => "flac",
            Media::Wav => "wav",
            Media::Ogg => "ogg",
            Media::Mp3 => "mp3",
            Media::Glb => "glb",
        }
    }

    /// Extensions that are acceptable for this format as they are.
    pub fn accepted_exts(self) -> &'static [&'static str] {
        match self {
            Media::Jpeg => &["jpg", "jpeg", "jfif"],
            Media::Mp4 => &["mp4", "m4v"],
            Media::Ogg => &["ogg", "opus", "oga"],
            Media::Png => &["png", "apng"],
            Media::Webm => &["webm", "mkv"],
            _ => std::slice::from_ref(match self {
                Media::Webp => &"webp",
                Media::Gif => &"gif",
                Media::Mov => &"mov",
                Media::Flac => &"flac",
                Media::Wav => &"wav",
                Media::Mp3 => &"mp3",
                Media::Glb => &"glb",
                _ => unreachable!(),
            }),
        }
    }

    /// Short name for reports (`webp`, `png`, `mp4`, ...).
    pub fn name(self) -> &'static str {
        self.ext()
    }

    pub fn mime(self) -> &'static str {
        match self {
            Media::Webp => "image/webp",
            Media::Png => "image/png",
            Media::Gif => "image/gif",
            Media::Jpeg => "image/jpeg",
            Media::Mp4 => "video/mp4",
            Media::Mov => "video/quicktime",
            Media::Webm => "video/webm",
            Media::Flac => "audio/flac",
            Media::Wav => "audio/wav",
            Media::Ogg => "audio/ogg",
            Media::Mp3 => "audio/mpeg",
            Media::Glb => "model/gltf-binary",
        }
    }

    pub fn is_image(self) -> bool {
        matches!(self, Media::Webp | Media::Png | Media::Gif | Media::Jpeg)
    }
}

/// How many leading bytes [`sniff`] needs to decide.
pub const SNIFF_LEN: usize = 16;

/// Identifies a format from the first bytes of a file (at least [`SNIFF_LEN`] when available).
pub fn sniff(b: &[u8]) -> Option<Media> {
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some(Media::Webp);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        return Some(Media::Wav);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Media::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(Media::Gif);
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Media::Jpeg);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return Some(if &b[8..12] == b"qt  " {
            Media::Mov
        } else {
            Media::Mp4
        });
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(Media::Webm);
    }
    if b.starts_with(b"fLaC") {
        return Some(Media::Flac);
    }
    if b.starts_with(b"OggS") {
        return Some(Media::Ogg);
    }
    if b.starts_with(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0) {
        return Some(Media::Mp3);
    }
    if b.starts_with(b"glTF") {
        return Some(Media::Glb);
    }
    None
}

/// The format a file name's extension claims, if it is one comfyctl knows how to check.
pub fn claimed_by_ext(name: &str) -> Option<Media> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    [
        Media::Webp,
        Media::Png,
        Media::Gif,
        Media::Jpeg,
        Media::Mp4,
        Media::Mov,
        Media::Webm,
        Media::Flac,
        Media::Wav,
        Media::Ogg,
        Media::Mp3,
        Media::Glb,
    ]
    .into_iter()
    .find(|m| m.accepted_exts().contains(&ext.as_str()))
}

/// A printable hint of what some unknown bytes start with (`"<html>..."` or hex).
pub fn describe_start(b: &[u8]) -> String {
    let head = &b[..b.len().min(16)];
    if !head.is_empty()
        && head
            .iter()
            .all(|&c| c.is_ascii_graphic() || c == b' ' || c == b'\n' || c == b'\r' || c == b'\t')
    {
        format!("{:?}", String::from_utf8_lossy(head))
    } else {
        head.iter()
            .map(|c| format!("{c:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8X"), Some(Media::Webp));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\0"), Some(Media::Png));
        assert_eq!(sniff(b"\0\0\0\x20ftypisom\0\0"), Some(Media::Mp4));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  \0\0"), Some(Media::Mov));
        assert_eq!(sniff(b"<html>oops</html>"), None);
        assert_eq!(claimed_by_ext("a.JPEG"), Some(Media::Jpeg));
        assert_eq!(claimed_by_ext("a.txt"), None);
    }
}
