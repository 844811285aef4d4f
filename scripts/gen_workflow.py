#!/usr/bin/env python3
"""Generates a large, realistic ComfyUI API-format workflow for benchmarks.

    python3 scripts/gen_workflow.py NODES OUT.json [--seed S]

The workflow is many pipelines of the kinds people actually run, side by side in one graph:
SD/SDXL text-to-image (checkpoint loader, a CLIPTextEncode pair, EmptyLatentImage, KSampler,
VAEDecode, SaveImage), image-to-image (LoadImage, VAEEncode, ...), Wan 2.1 image-to-video (the
13-node shape of workflows/wan_i2v.json, SaveAnimatedWEBP or VHS_VideoCombine), an upscale
chain, and LoRA stacks. Literal values vary per pipeline the way real files do: 15-digit seeds,
floats written like `6.0` and `7.5`, prompt texts, image names, `_meta` titles. Some pipelines
share loaders with an earlier one (fan-out), as multi-pass workflows do.

Node IDs are ComfyUI-style integers in creation order; like a UI export, the sampler of a
pipeline is created before its loaders, so links point both forward and backward in the file.
The output is exactly NODES nodes and is fully determined by NODES and --seed (the templates
live here, not in workflows/, so the benchmark input never changes under it).
"""

import argparse
import json
import random
import sys

WORDS = (
    "a cute anime girl with massive fennec ears and a big fluffy tail wearing a maid outfit "
    "turning around lighthouse on a cliff at sunset oil painting cyberpunk city street at night "
    "rain neon reflections portrait of an old fisherman dramatic lighting highly detailed 8k "
    "watercolor landscape mountains lake morning mist cinematic shot of a red fox in snow forest "
    "macro photograph of a dew drop on a leaf astronaut riding a horse on mars studio ghibli style"
).split()
NEGATIVE = [
    "text, watermark, blurry",
    "lowres, bad anatomy, bad hands, worst quality, low quality, jpeg artifacts",
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量",
    "deformed, disfigured, extra limbs, ugly",
]
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "uni_pc", "ddim"]
SCHEDULERS = ["normal", "karras", "simple", "sgm_uniform"]
CKPTS = [
    "sd_xl_base_1.0.safetensors",
    "v1-5-pruned-emaonly.safetensors",
    "dreamshaper_8.safetensors",
    "juggernautXL_v9.safetensors",
]
LORAS = ["detail_tweaker.safetensors", "film_grain.safetensors", "add_more_details_xl.safetensors"]


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes = {}
        self.next_id = 1
        self.shared_ckpt = []  # (ckpt node id) of earlier SD pipelines, for fan-out
        self.shared_wan = []  # (clip, vae, clip_vision, model) ids of earlier Wan pipelines

    def reserve(self):
        i = str(self.next_id)
        self.next_id += 1
        return i

    def put(self, nid, class_type, inputs, title=None):
        self.nodes[nid] = {
            "inputs": inputs,
            "class_type": class_type,
            "_meta": {"title": title or class_type},
        }

    # Literal values -----------------------------------------------------------------------
    def seed(self):
        return self.rng.randrange(10**14, 10**15)

    def prompt(self):
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randrange(8, 40)))

    def cfg(self):
        return self.rng.choice([6.0, 7.0, 7.5, 4.5, 8.0, 5.5])

    def image_name(self):
        return f"input_{self.rng.randrange(100000):05d}.png"

    # Pipelines (each returns its node count) -----------------------------------------------
    def sd_t2i(self):
        r = self.rng
        ks, pos, neg = self.reserve(), self.reserve(), self.reserve()
        dec, save, lat = self.reserve(), self.reserve(), self.reserve()
        count = 6
        if self.shared_ckpt and r.random() < 0.3:
            ck = r.choice(self.shared_ckpt)
        else:
            ck = self.reserve()
            count += 1
            self.put(ck, "CheckpointLoaderSimple", {"ckpt_name": r.choice(CKPTS)}, "Load Checkpoint")
            self.shared_ckpt.append(ck)
        side = r.choice([512, 768, 1024])
        self.put(ks, "KSampler", {
            "seed": self.seed(), "steps": r.choice([20, 25, 30]), "cfg": self.cfg(),
            "sampler_name": r.choice(SAMPLERS), "scheduler": r.choice(SCHEDULERS), "denoise": 1.0,
            "model": [ck, 0], "positive": [pos, 0], "negative": [neg, 0], "latent_image": [lat, 0],
        })
        self.put(pos, "CLIPTextEncode", {"text": self.prompt(), "clip": [ck, 1]},
                 "CLIP Text Encode (Positive Prompt)")
        self.put(neg, "CLIPTextEncode", {"text": r.choice(NEGATIVE), "clip": [ck, 1]},
                 "CLIP Text Encode (Negative Prompt)")
        self.put(dec, "VAEDecode", {"samples": [ks, 0], "vae": [ck, 2]}, "VAE Decode")
        self.put(save, "SaveImage", {"filename_prefix": f"t2i_{r.randrange(1000)}", "images": [dec, 0]},
                 "Save Image")
        self.put(lat, "EmptyLatentImage", {"width": side, "height": side, "batch_size": 1},
                 "Empty Latent Image")
        return count

    def img2img(self):
        r = self.rng
        ids = [self.reserve() for _ in range(9)]
        ks, pos, neg, dec, save, ck, img, enc, lora = ids
        self.put(ks, "KSampler", {
            "seed": self.seed(), "steps": 30, "cfg": self.cfg(), "sampler_name": r.choice(SAMPLERS),
            "scheduler": r.choice(SCHEDULERS), "denoise": r.choice([0.45, 0.6, 0.75]),
            "model": [lora, 0], "positive": [pos, 0], "negative": [neg, 0], "latent_image": [enc, 0],
        })
        self.put(pos, "CLIPTextEncode", {"text": self.prompt(), "clip": [lora, 1]},
                 "CLIP Text Encode (Positive Prompt)")
        self.put(neg, "CLIPTextEncode", {"text": r.choice(NEGATIVE), "clip": [lora, 1]},
                 "CLIP Text Encode (Negative Prompt)")
        self.put(dec, "VAEDecode", {"samples": [ks, 0], "vae": [ck, 2]}, "VAE Decode")
        self.put(save, "SaveImage", {"filename_prefix": "img2img", "images": [dec, 0]}, "Save Image")
        self.put(ck, "CheckpointLoaderSimple", {"ckpt_name": r.choice(CKPTS)}, "Load Checkpoint")
        self.put(img, "LoadImage", {"image": self.image_name(), "upload": "image"}, "Load Image")
        self.put(enc, "VAEEncode", {"pixels": [img, 0], "vae": [ck, 2]}, "VAE Encode")
        self.put(lora, "LoraLoader", {
            "lora_name": r.choice(LORAS), "strength_model": r.choice([0.8, 1.0, 0.65]),
            "strength_clip": 1.0, "model": [ck, 0], "clip": [ck, 1],
        }, "Load LoRA")
        return 9

    def wan_i2v(self):
        r = self.rng
        ks, pos, neg, dec, save = (self.reserve() for _ in range(5))
        count = 5
        if self.shared_wan and r.random() < 0.25:
            clip, vae, cvl, model = r.choice(self.shared_wan)
        else:
            clip, vae, cvl, model = (self.reserve() for _ in range(4))
            count += 4
            self.put(clip, "CLIPLoader", {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                          "type": "wan", "device": "default"}, "Load CLIP")
            self.put(vae, "VAELoader", {"vae_name": "wan_2.1_vae.safetensors"}, "Load VAE")
            self.put(cvl, "CLIPVisionLoader", {"clip_name": "clip_vision_h.safetensors"},
                     "Load CLIP Vision")
            self.put(model, "LoadDiffusionModelShared //Inspire", {
                "model_name": "wan2.1_i2v_720p_14B_bf16.safetensors", "weight_dtype": "default",
                "key_opt": "wan2.1", "mode": "Auto"}, "Shared Diffusion Model Loader (Inspire)")
            self.shared_wan.append((clip, vae, cvl, model))
        i2v, cve, img, ms = (self.reserve() for _ in range(4))
        count += 4
        self.put(ks, "KSampler", {
            "seed": self.seed(), "steps": 20, "cfg": self.cfg(), "sampler_name": "uni_pc",
            "scheduler": "simple", "denoise": 1, "model": [ms, 0], "positive": [i2v, 0],
            "negative": [i2v, 1], "latent_image": [i2v, 2],
        })
        self.put(pos, "CLIPTextEncode", {"text": self.prompt(), "clip": [clip, 0]},
                 "CLIP Text Encode (Positive Prompt)")
        self.put(neg, "CLIPTextEncode", {"text": NEGATIVE[2], "clip": [clip, 0]},
                 "CLIP Text Encode (Negative Prompt)")
        self.put(dec, "VAEDecode", {"samples": [ks, 0], "vae": [vae, 0]}, "VAE Decode")
        if r.random() < 0.7:
            self.put(save, "SaveAnimatedWEBP", {
                "filename_prefix": "wan_i2v", "fps": 16, "lossless": False, "quality": 90,
                "method": "default", "images": [dec, 0]}, "SaveAnimatedWEBP")
        else:
            self.put(save, "VHS_VideoCombine", {
                "frame_rate": 16.0, "loop_count": 0, "filename_prefix": "wan", "format": "video/h264-mp4",
                "pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "pingpong": False,
                "save_output": True, "images": [dec, 0]}, "Video Combine 🎥🅥🅗🅢")
        self.put(i2v, "WanImageToVideo", {
            "width": 512, "height": 512, "length": r.choice([33, 49, 81]), "batch_size": 1,
            "positive": [pos, 0], "negative": [neg, 0], "vae": [vae, 0],
            "clip_vision_output": [cve, 0], "start_image": [img, 0]}, "WanImageToVideo")
        self.put(cve, "CLIPVisionEncode", {"crop": "none", "clip_vision": [cvl, 0], "image": [img, 0]},
                 "CLIP Vision Encode")
        self.put(img, "LoadImage", {"image": self.image_name()}, "Load Image")
        self.put(ms, "ModelSamplingSD3", {"shift": 8.0, "model": [model, 0]}, "ModelSamplingSD3")
        return count

    def chain(self, n):
        """LoadImage -> ImageScale/ImageInvert ... -> SaveImage, exactly n nodes (n >= 1)."""
        ids = [self.reserve() for _ in range(n)]
        self.put(ids[0], "LoadImage", {"image": self.image_name()}, "Load Image")
        for k in range(1, n):
            prev = [ids[k - 1], 0]
            if k == n - 1:
                self.put(ids[k], "SaveImage", {"filename_prefix": "chain", "images": prev}, "Save Image")
            elif k % 2:
                self.put(ids[k], "ImageScale", {"upscale_method": "bilinear", "width": 128 * k,
                                                "height": 128 * k, "crop": "disabled", "image": prev})
            else:
                self.put(ids[k], "ImageInvert", {"image": prev})
        return n


def generate(n, seed):
    b = Builder(random.Random(seed))
    kinds = [b.sd_t2i, b.sd_t2i, b.img2img, b.wan_i2v, b.wan_i2v]
    total = 0
    while n - total > 13:
        total += b.rng.choice(kinds)()
    if n - total:
        total += b.chain(n - total)
    assert total == len(b.nodes) == n, (total, len(b.nodes), n)
    # Like a UI export: keys in numeric ID order.
    return {k: b.nodes[k] for k in sorted(b.nodes, key=int)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("nodes", type=int)
    ap.add_argument("out", help="output file, or - for stdout")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.nodes < 1:
        sys.exit("gen_workflow.py: NODES must be at least 1")
    w = generate(a.nodes, a.seed)
    text = json.dumps(w, indent=2, ensure_ascii=False) + "\n"
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
