//! `batch --report FILE.html`: a self-contained gallery of a batch — one card per job with its
//! output shown (`img` for WEBP/PNG/GIF/JPEG, `video` for MP4/WEBM, referenced by a path relative
//! to the page, so the folder can be moved or served as is), the job's ID, status, prompt, seed,
//! target, nodes ran/cached, timings, and the error of a failed job. A small script marks every
//! card whose media loaded (`data-media="loaded"` / `"broken"`) and counts them on `<body>`, which
//! is what the headless-browser test reads.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// One job on the page.
#[derive(Debug, Clone, Default)]
pub struct Card {
    pub id: String,
    pub line: usize,
    /// `completed`, `failed`, `finished earlier`, `unknown`.
    pub status: String,
    pub prompt: Option<String>,
    pub seed: Option<u64>,
    pub target: Option<String>,
    /// `(path, format)` of each saved output.
    pub outputs: Vec<(PathBuf, String)>,
    pub nodes: Option<(usize, usize)>,
    pub total_s: Option<f64>,
    pub error: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `target` relative to the directory `from` (both made absolute first).
pub fn relative(target: &Path, from: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (t, f) = (abs(target), abs(from));
    let tc: Vec<Component> = t.components().collect();
    let fc: Vec<Component> = f.components().collect();
    let common = tc.iter().zip(&fc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..fc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// Percent-encodes a relative path for an `src` attribute (keeps `/`).
fn href(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.split('/')
        .map(|seg| percent_encoding::utf8_percent_encode(seg, crate::net::PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The whole page for `cards`, with media paths relative to `page_dir`.
pub fn render(title: &str, cards: &[Card], page_dir: &Path, summary: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #f6f6f6; color: #222; }}
h1 {{ font-size: 1.3em; }} .summary {{ margin-bottom: 1em; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1em; }}
.card {{ background: #fff; border-radius: 6px; padding: .7em; box-shadow: 0 1px 3px #0002; }}
.card.failed {{ border-left: 4px solid #c33; }} .card.completed {{ border-left: 4px solid #3a3; }}
.card img, .card video {{ width: 100%; height: auto; background: #ddd; display: block; margin-bottom: .4em; }}
.id {{ font-weight: 600; }} .meta {{ color: #555; font-size: .9em; }} .err {{ color: #a00; white-space: pre-wrap; }}
</style></head>
<body data-media-loaded="0" data-media-broken="0" data-media-total="0">
<h1>{t}</h1>
<div class="summary">{s}</div>
<div class="grid">
"#,
        t = esc(title),
        s = esc(summary)
    );
    for c in cards {
        let _ = write!(
            h,
            "<div class=\"card {cls}\" id=\"job-{id}\">",
            cls = if c.status == "failed" {
                "failed"
            } else if c.status == "completed" {
                "completed"
            } else {
                "other"
            },
            id = esc(&c.id)
        );
        for (p, format) in &c.outputs {
            let src = href(&relative(p, page_dir));
            match format.as_str() {
                "mp4" | "webm" | "mov" => {
                    let _ = write!(h, "<video class=\"media\" src=\"{}\" controls muted loop playsinline preload=\"auto\"></video>", esc(&src));
                }
                _ => {
                    let _ = write!(
                        h,
                        "<img class=\"media\" src=\"{}\" alt=\"{}\">",
                        esc(&src),
                        esc(&p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default())
                    );
                }
            }
        }
        let _ = write!(
            h,
            "<div class=\"id\">{} <span class=\"meta\">line {} · {}</span></div>",
            esc(&c.id),
            c.line,
            esc(&c.status)
        );
        if let Some(p) = &c.prompt {
            let _ = write!(h, "<div class=\"prompt\">{}</div>", esc(p));
        }
        let mut meta = Vec::new();
        if let Some(s) = c.seed {
            meta.push(format!("seed {s}"));
        }
        if let Some((ran, cached)) = c.nodes {
            meta.push(format!("{ran} ran / {cached} cached"));
        }
        if let Some(t) = c.total_s {
            meta.push(format!("{t:.1} s"));
        }
        if let Some(t) = &c.target {
            meta.push(t.clone());
        }
        if !meta.is_empty() {
            let _ = write!(h, "<div class=\"meta\">{}</div>", esc(&meta.join(" · ")));
        }
        if let Some(e) = &c.error {
            let _ = write!(h, "<div class=\"err\">{}</div>", esc(e));
        }
        h.push_str("</div>\n");
    }
    h.push_str(
        r#"</div>
<script>
(function () {
  var media = document.querySelectorAll('.media'), b = document.body, loaded = 0, broken = 0;
  b.dataset.mediaTotal = media.length;
  function mark(el, ok) {
    if (el.dataset.media) return;
    el.dataset.media = ok ? 'loaded' : 'broken';
    if (ok) loaded++; else broken++;
    b.dataset.mediaLoaded = loaded; b.dataset.mediaBroken = broken;
  }
  media.forEach(function (el) {
    if (el.tagName === 'IMG') {
      if (el.complete) mark(el, el.naturalWidth > 0);
      el.addEventListener('load', function () { mark(el, el.naturalWidth > 0); });
      el.addEventListener('error', function () { mark(el, false); });
    } else {
      if (el.readyState >= 1) mark(el, el.videoWidth > 0);
      el.addEventListener('loadedmetadata', function () { mark(el, el.videoWidth > 0); });
      el.addEventListener('error', function () { mark(el, false); });
    }
  });
})();
</script>
</body></html>
"#,
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_and_escaping() {
        assert_eq!(
            relative(Path::new("/a/b/out/x.webp"), Path::new("/a/b")),
            PathBuf::from("out/x.webp")
        );
        assert_eq!(
            relative(Path::new("/a/out/x.webp"), Path::new("/a/b/c")),
            PathBuf::from("../../out/x.webp")
        );
        let page = render(
            "t",
            &[Card {
                id: "j<1>".into(),
                status: "failed".into(),
                error: Some("node \"x\" & <script>".into()),
                ..Card::default()
            }],
            Path::new("/"),
            "s",
        );
        assert!(page.contains("j&lt;1&gt;") && page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>alert"));
    }
}
