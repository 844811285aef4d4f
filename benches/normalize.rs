//! Criterion benchmarks of the normalizer on in-memory workflows.
//!
//! `cargo bench --bench normalize` (add a filter such as `text/100000` to run one). Two routes
//! are measured on the same generated graphs of 1k, 10k and 100k nodes and on the shipped Wan
//! workflow:
//! - `value`: `normalize::normalize` on an already-parsed `serde_json` map (what `verify` and
//!   `send` use);
//! - `text`: what `comfyctl normalize FILE` does: parse the text (`normalize::fast`), run the
//!   naming rule, write the pretty JSON (into a sink).
//!
//! Whole-process numbers against the old Python normalizer come from
//! `scripts/bench_normalize.sh`; this bench is for tracking the in-process cost of changes.

use comfyctl::normalize::{self, fast, NameTable};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::time::Duration;

/// Deterministic xorshift, so every run benchmarks the same graphs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "a",
    "cute",
    "fox",
    "in",
    "snow",
    "lighthouse",
    "cliff",
    "sunset",
    "oil",
    "painting",
    "neon",
    "city",
    "rain",
    "portrait",
    "dramatic",
    "lighting",
    "watercolor",
    "mountains",
    "lake",
    "mist",
];

fn prompt(r: &mut Rng) -> String {
    let n = 8 + r.next() % 24;
    (0..n).map(|_| r.pick(WORDS)).collect::<Vec<_>>().join(" ")
}

fn node(class: &str, inputs: Value, title: &str) -> Value {
    json!({"inputs": inputs, "class_type": class, "_meta": {"title": title}})
}

fn link(id: u64, slot: u64) -> Value {
    json!([id.to_string(), slot])
}

/// A workflow of about `n` nodes: SD text-to-image pipelines (7 nodes) and Wan image-to-video
/// pipelines (13 nodes), alternating at random, with varied seeds, prompts and image names, in the
/// shape of `scripts/gen_workflow.py`'s output.
fn generate(n: usize, seed: u64) -> Map<String, Value> {
    let mut r = Rng(seed | 1);
    let mut m = Map::new();
    let mut id = 0u64;
    let mut next = || {
        id += 1;
        id
    };
    while m.len() < n {
        let seed_value =
            Value::Number((100_000_000_000_000 + r.next() % 900_000_000_000_000).into());
        let cfg: Value = serde_json::from_str(r.pick(&["6.0", "7.5", "4.5", "8.0"])).unwrap();
        if r.next().is_multiple_of(2) {
            let [ks, pos, neg, dec, save, ck, lat] = [(); 7].map(|_| next());
            m.insert(
                ks.to_string(),
                node(
                    "KSampler",
                    json!({
                "seed": seed_value, "steps": 20, "cfg": cfg, "sampler_name": "euler",
                "scheduler": "normal", "denoise": 1.0, "model": link(ck, 0),
                "positive": link(pos, 0), "negative": link(neg, 0), "latent_image": link(lat, 0)}),
                    "KSampler",
                ),
            );
            m.insert(
                pos.to_string(),
                node(
                    "CLIPTextEncode",
                    json!({"text": prompt(&mut r), "clip": link(ck, 1)}),
                    "Positive",
                ),
            );
            m.insert(
                neg.to_string(),
                node(
                    "CLIPTextEncode",
                    json!({"text": "blurry, watermark", "clip": link(ck, 1)}),
                    "Negative",
                ),
            );
            m.insert(
                dec.to_string(),
                node(
                    "VAEDecode",
                    json!({"samples": link(ks, 0), "vae": link(ck, 2)}),
                    "VAE Decode",
                ),
            );
            m.insert(
                save.to_string(),
                node(
                    "SaveImage",
                    json!({"filename_prefix": "t2i", "images": link(dec, 0)}),
                    "Save Image",
                ),
            );
            m.insert(
                ck.to_string(),
                node(
                    "CheckpointLoaderSimple",
                    json!({"ckpt_name": "sd_xl_base_1.0.safetensors"}),
                    "Load Checkpoint",
                ),
            );
            m.insert(
                lat.to_string(),
                node(
                    "EmptyLatentImage",
                    json!({"width": 1024, "height": 1024, "batch_size": 1}),
                    "Empty Latent Image",
                ),
            );
        } else {
            let [ks, pos, neg, dec, save, clip, vae, cvl, model, i2v, cve, img, ms] =
                [(); 13].map(|_| next());
            m.insert(
                ks.to_string(),
                node(
                    "KSampler",
                    json!({
                "seed": seed_value, "steps": 20, "cfg": cfg, "sampler_name": "uni_pc",
                "scheduler": "simple", "denoise": 1, "model": link(ms, 0),
                "positive": link(i2v, 0), "negative": link(i2v, 1), "latent_image": link(i2v, 2)}),
                    "KSampler",
                ),
            );
            m.insert(
                pos.to_string(),
                node(
                    "CLIPTextEncode",
                    json!({"text": prompt(&mut r), "clip": link(clip, 0)}),
                    "Positive",
                ),
            );
            m.insert(
                neg.to_string(),
                node(
                    "CLIPTextEncode",
                    json!({"text": "色调艳丽，过曝，静态", "clip": link(clip, 0)}),
                    "Negative",
                ),
            );
            m.insert(
                dec.to_string(),
                node(
                    "VAEDecode",
                    json!({"samples": link(ks, 0), "vae": link(vae, 0)}),
                    "VAE Decode",
                ),
            );
            m.insert(save.to_string(), node("SaveAnimatedWEBP", json!({"filename_prefix": "wan", "fps": 16, "lossless": false, "quality": 90, "method": "default", "images": link(dec, 0)}), "Save"));
            m.insert(clip.to_string(), node("CLIPLoader", json!({"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "wan", "device": "default"}), "Load CLIP"));
            m.insert(
                vae.to_string(),
                node(
                    "VAELoader",
                    json!({"vae_name": "wan_2.1_vae.safetensors"}),
                    "Load VAE",
                ),
            );
            m.insert(
                cvl.to_string(),
                node(
                    "CLIPVisionLoader",
                    json!({"clip_name": "clip_vision_h.safetensors"}),
                    "Load CLIP Vision",
                ),
            );
            m.insert(model.to_string(), node("LoadDiffusionModelShared //Inspire", json!({"model_name": "wan2.1_i2v_720p_14B_bf16.safetensors", "weight_dtype": "default", "key_opt": "wan2.1", "mode": "Auto"}), "Model"));
            m.insert(i2v.to_string(), node("WanImageToVideo", json!({"width": 512, "height": 512, "length": 33, "batch_size": 1, "positive": link(pos, 0), "negative": link(neg, 0), "vae": link(vae, 0), "clip_vision_output": link(cve, 0), "start_image": link(img, 0)}), "WanImageToVideo"));
            m.insert(
                cve.to_string(),
                node(
                    "CLIPVisionEncode",
                    json!({"crop": "none", "clip_vision": link(cvl, 0), "image": link(img, 0)}),
                    "CLIP Vision Encode",
                ),
            );
            m.insert(
                img.to_string(),
                node(
                    "LoadImage",
                    json!({"image": format!("input_{:05}.png", r.next() % 100_000)}),
                    "Load Image",
                ),
            );
            m.insert(
                ms.to_string(),
                node(
                    "ModelSamplingSD3",
                    json!({"shift": 8.0, "model": link(model, 0)}),
                    "ModelSamplingSD3",
                ),
            );
        }
    }
    m
}

/// `comfyctl normalize`'s in-process work on a file's text.
fn text_route(text: &mut String, table: &NameTable) -> usize {
    fast::with_workflow(text, |wf| {
        let n = wf.normalize(table);
        let mut out = CountingSink(0);
        n.write_pretty(&mut out).expect("writing to a sink");
        out.0
    })
    .expect("a valid generated workflow")
}

struct CountingSink(usize);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let table = NameTable::builtin();

    let mut wan_text = include_str!("../workflows/wan_i2v.json").to_string();
    let wan: Map<String, Value> = serde_json::from_str(&wan_text).expect("wan_i2v.json parses");
    let mut g = c.benchmark_group("wan_i2v");
    g.bench_function("value", |b| {
        b.iter(|| normalize::normalize(black_box(&wan), "wan", &table).map(|n| n.nodes.len()))
    });
    g.bench_function("text", |b| {
        b.iter(|| text_route(black_box(&mut wan_text), &table))
    });
    g.finish();

    for n in [1_000, 10_000, 100_000] {
        let nodes = generate(n, 7);
        let mut text = serde_json::to_string_pretty(&nodes).expect("serializable");
        let mut g = c.benchmark_group(format!("nodes_{n}"));
        if n >= 100_000 {
            g.sample_size(10).measurement_time(Duration::from_secs(8));
        } else if n >= 10_000 {
            g.sample_size(20).measurement_time(Duration::from_secs(4));
        }
        g.bench_with_input(BenchmarkId::new("value", n), &nodes, |b, nodes| {
            b.iter(|| normalize::normalize(nodes, "bench", &table).map(|n| n.nodes.len()))
        });
        g.bench_function(BenchmarkId::new("text", n), |b| {
            b.iter(|| text_route(&mut text, &table))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
