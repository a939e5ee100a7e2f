#!/usr/bin/env python
"""How fast videoscore-reward is against the reference way of running VideoScore.

The reference path is the original VideoScore example: frames -> PIL images -> the checkpoint's
`Idefics2Processor` -> model, one video per forward pass. Each figure is measured in this run,
next to its baseline, and reported as a ratio (baseline time / our time).

    python benchmarks/run.py                                   # every section
    python benchmarks/run.py preprocess decode                 # some sections
    python benchmarks/run.py --results benchmarks/RESULTS.md   # also append the tables there

Sections: `preprocess` (frames to model inputs), `e2e` (tiny checkpoint, CPU), `decode` (files to
frames), `gpu` (the real architecture with random weights; on a machine without CUDA it checks its
FLOPs formula and code path on CPU with a scaled-down config instead). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import av
import numpy as np
import torch
import transformers
from PIL import Image
from transformers import Idefics2Config
from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

from videoscore_reward import VideoScoreModel, VideoScoreReward, load_video, sample_indices
from videoscore_reward.reward.checkpoints import FAMILIES
from videoscore_reward.reward.preprocess import ImageSettings, check_videos, preprocess_videos
from videoscore_reward.reward.prompt import build_query
from videoscore_reward.testing import make_frames, tiny_checkpoint, write_test_video

SECTIONS = ("preprocess", "e2e", "decode", "gpu")
PROMPT = "a corgi running on the beach at sunset"
# The published checkpoints' image settings, from the family table.
_IMAGE_SETTINGS = ImageSettings.from_image_processor(
    Idefics2ImageProcessorPil(**FAMILIES["videoscore"].image_processor_kwargs())
)


# --------------------------------------------------------------------------------------------
# Measuring and reporting


@dataclass
class Table:
    """One section's results: `rows` hold raw values by key, `columns` maps keys to headers."""

    title: str
    columns: dict[str, str]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns.values()) + " |")
            lines.append("|" + "---|" * len(self.columns))
            for row in self.rows:
                lines.append("| " + " | ".join(_format(row.get(key, "")) for key in self.columns) + " |")
            lines.append("")
        lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines).rstrip() + "\n"


def _format(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    calls: dict[str, Callable[[], object]],
    *,
    iters: int,
    warmup: int = 1,
    min_seconds: float = 0.0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Median wall-clock seconds per call of each of `calls`, timed in interleaved rounds.

    Each round calls every function once, so a path and its baseline see the same machine load,
    which matters on shared machines more than the number of rounds. After `warmup` untimed rounds,
    rounds go on until there are `iters` of them and they took `min_seconds` (at most 10 * iters).
    CUDA work is synchronized before each clock stops.
    """
    device = torch.device(device)
    for _ in range(warmup):
        for fn in calls.values():
            fn()
        _sync(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    began = time.perf_counter()
    while len(times[next(iter(calls))]) < iters or (
        time.perf_counter() - began < min_seconds and len(times[next(iter(calls))]) < 10 * iters
    ):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRSS:
    """Peak resident memory of this process above its level at `start()`, in MiB (Linux only).

    Linux keeps the high-water mark of the resident set (VmHWM); writing 5 to /proc/self/clear_refs
    resets it to the current RSS. This sees every allocation (torch, numpy, PIL), unlike tracemalloc,
    which sees only Python's allocator. Freed memory that the C allocator keeps for reuse is not
    counted twice, so a measurement is most meaningful in a fresh process.
    """

    def start(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            self._base = _proc_status_kib("VmRSS")
        except OSError:
            self._base = None

    def peak_mib(self) -> float:
        peak = _proc_status_kib("VmHWM")
        if self._base is None or peak is None:
            return float("nan")
        return (peak - self._base) / 1024


def _machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = _proc_meminfo_gib()
    info = {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}",
        "memory": f"{memory:.0f} GiB" if memory else "unknown",
        "GPU": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "software": (
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, PyAV {av.__version__}, "
            f"Pillow {Image.__version__}, {platform.system()} {platform.release()}"
        ),
    }
    return info


def _proc_meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            return int(meminfo.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _load() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------------------------
# The reference path: what the original VideoScore example does for one video


def reference_inputs(processor, frames: torch.Tensor, prompt: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Model inputs for one video the original way: uint8 [T, 3, H, W] frames (any device) ->
    PIL images -> the checkpoint's processor -> tensors on `device`."""
    images = [Image.fromarray(frame) for frame in frames.permute(0, 2, 3, 1).cpu().numpy()]
    inputs = processor(text=build_query(prompt, len(images)), images=images, return_tensors="pt")
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def our_inputs(reward: VideoScoreReward, videos: list[torch.Tensor], prompts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    """Model inputs for a batch our way: what `VideoScoreReward` computes before the model."""
    pixel_values, pixel_mask, counts = preprocess_videos(
        check_videos(videos), num_frames=None, settings=reward.image_settings, device=device
    )
    text = reward.processor(
        text=[build_query(prompt, count) for prompt, count in zip(prompts, counts)],
        padding="longest",
        padding_side="right",
        return_tensors="pt",
    )
    return dict(
        input_ids=text["input_ids"].to(device),
        attention_mask=text["attention_mask"].to(device),
        pixel_values=pixel_values,
        pixel_attention_mask=pixel_mask,
    )


# --------------------------------------------------------------------------------------------
# 1. Preprocessing


def bench_preprocess(
    reward: VideoScoreReward,
    *,
    device: str | torch.device = "cpu",
    frame_counts: Sequence[int] = (16, 48),
    sizes: Sequence[int] = (256, 512, 1024),
    videos: int = 2,
    iters: int = 3,
    warmup: int = 1,
    min_seconds: float = 2.0,
) -> Table:
    """Videos/s from uint8 frames on `device` to model inputs on `device`: our tensor path on the
    whole batch in one call against the processor path one video at a time (text included in both).

    `reward` supplies the processor and its settings; its model is not used.
    """
    device = torch.device(device)
    table = Table(
        f"Preprocessing on {device.type.upper()}: frames to model inputs, {videos} square videos per call",
        dict(
            device="device", frames="frames", size="input px", model_px="model px", ours="ours (videos/s)",
            reference="processor path (videos/s)", speedup="speedup", diff="max abs pixel diff",
        ),
    )
    for frames in frame_counts:
        for size in sizes:
            clips = [make_frames(frames, size, size, seed=i).to(device) for i in range(videos)]
            prompts = [PROMPT] * videos
            seconds = time_calls(
                {
                    "ours": lambda: our_inputs(reward, clips, prompts, device),
                    "reference": lambda: [reference_inputs(reward.processor, clip, PROMPT, device) for clip in clips],
                },
                iters=iters, warmup=warmup, min_seconds=min_seconds, device=device,
            )
            ours, reference = seconds["ours"], seconds["reference"]
            batch = our_inputs(reward, clips, prompts, device)["pixel_values"]
            diff = max(
                float((batch[i] - reference_inputs(reward.processor, clip, PROMPT, device)["pixel_values"][0]).abs().max())
                for i, clip in enumerate(clips)
            )
            table.rows.append(dict(
                device=str(device), frames=frames, size=size, model_px=batch.shape[-1],
                ours=videos / ours, reference=videos / reference, speedup=reference / ours, diff=diff,
            ))
            del clips, batch
    table.notes.append(
        f"Processor path: `{type(reward.processor.image_processor).__name__}` with the checkpoints' settings "
        "(shortest edge 378, longest edge 980, no image splitting), one video per call; on a GPU its "
        "time includes the copies to and from the device."
    )
    return table


# --------------------------------------------------------------------------------------------
# 2. End-to-end scoring with the tiny checkpoint


def scoring_calls(
    checkpoint: str | os.PathLike, *, batch: int, frames: int, size: int
) -> tuple[dict[str, Callable[[], None]], dict[str, torch.Tensor]]:
    """The two ways to score `batch` videos of `frames` x `size` x `size` on CPU with `checkpoint`:
    "ours" (one `VideoScoreReward` call, batch_size=batch) and "reference" (per video, the processor
    path and one forward pass). Returns the calls and a dict where each leaves its last scores [B, 5]."""
    reward = VideoScoreReward.from_pretrained(checkpoint, device="cpu", num_frames=frames, batch_size=batch)
    videos = [make_frames(frames, size, size, seed=i) for i in range(batch)]
    prompts = [f"{PROMPT}, take {i}" for i in range(batch)]
    scores: dict[str, torch.Tensor] = {}

    def ours() -> None:
        scores["ours"] = reward(videos, prompts).scores

    @torch.inference_mode()
    def reference() -> None:
        scores["reference"] = torch.stack([
            reward.model(**reference_inputs(reward.processor, video, prompt, reward.device)).logits.float()[0]
            for video, prompt in zip(videos, prompts)
        ])

    return {"ours": ours, "reference": reference}, scores


def scoring_peak_mib(checkpoint: str | os.PathLike, *, path: str, batch: int, frames: int, size: int) -> float:
    """Peak resident memory (MiB) of one scoring call by `path` ("ours" or "reference") above the
    level after loading the model and making the videos. Meant to run in a fresh process."""
    call = scoring_calls(checkpoint, batch=batch, frames=frames, size=size)[0][path]
    memory = PeakRSS()
    memory.start()
    call()
    return memory.peak_mib()


def bench_e2e(
    checkpoint: str | os.PathLike,
    *,
    batches: Sequence[int] = (1, 8, 32),
    frames: int = 16,
    size: int = 256,
    iters: int = 3,
    warmup: int = 1,
    isolate: bool = True,
) -> Table:
    """Videos/s and peak memory of scoring with the tiny checkpoint on CPU: our batched call against
    the reference loop. Times are taken in this process, the two paths interleaved; with `isolate`,
    peak memory is measured in a fresh process per (path, batch), so that memory one run freed cannot
    hide another's peak."""
    table = Table(
        f"End-to-end scoring, tiny checkpoint, CPU float32: {frames} frames at {size}x{size} px",
        dict(
            batch="batch", ours="ours (videos/s)", reference="reference loop (videos/s)", speedup="speedup",
            ours_mib="ours peak MiB", reference_mib="reference peak MiB", diff="max abs score diff",
        ),
    )
    for batch in batches:
        shape = dict(batch=batch, frames=frames, size=size)
        calls, scores = scoring_calls(checkpoint, **shape)
        seconds = time_calls(calls, iters=iters, warmup=warmup)
        peaks = {}
        for path in calls:
            if isolate:
                with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    peaks[path] = pool.submit(scoring_peak_mib, checkpoint, path=path, **shape).result()
            else:
                peaks[path] = scoring_peak_mib(checkpoint, path=path, **shape)
        table.rows.append(dict(
            batch=batch, ours=batch / seconds["ours"], reference=batch / seconds["reference"],
            speedup=seconds["reference"] / seconds["ours"], ours_mib=peaks["ours"], reference_mib=peaks["reference"],
            diff=float((scores["ours"] - scores["reference"]).abs().max()),
        ))
        del calls, scores
    table.notes.append(
        "Ours: one `VideoScoreReward` call with `batch_size` = batch (one forward pass). Reference: per video, "
        "PIL frames -> processor -> model. Peak memory: increase of the resident set during one call (Linux "
        "VmHWM, reset through /proc/self/clear_refs) over its level after loading the model and making the videos"
        + (", each in a fresh process." if isolate else ".")
        + " Score differences come from PIL's vs. torch's bilinear resize (frames are upscaled to 378 px)."
    )
    return table


# --------------------------------------------------------------------------------------------
# 3. Decoding


def decode_every_frame(path: str | os.PathLike, num_frames: int) -> torch.Tensor:
    """The plain way: decode and convert every frame with PyAV, then keep the sampled ones."""
    with av.open(str(path)) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    return torch.from_numpy(frames[sample_indices(len(frames), num_frames)]).permute(0, 3, 1, 2)


def decode_like_original_example(path: str | os.PathLike, num_frames: int) -> torch.Tensor:
    """The original example's reader: frame count from the header, decode (unthreaded) up to the
    last sampled frame, convert only the sampled ones."""
    with av.open(str(path)) as container:
        keep = sample_indices(container.streams.video[0].frames, num_frames)
        wanted, kept = set(keep), []
        for index, frame in enumerate(container.decode(video=0)):
            if index > keep[-1]:
                break
            if index in wanted:
                kept.append(frame)
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in kept])
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def write_benchmark_video(path: Path, *, seconds: int, fps: int, size: int) -> Path:
    """An H.264 mp4 of `seconds` x `fps` frames of `make_frames` content (it repeats every 64 frames)."""
    count = seconds * fps
    frames = make_frames(64, size, size).repeat(math.ceil(count / 64), 1, 1, 1)[:count]
    return write_test_video(path, frames=frames, fps=fps)


def bench_decode(
    folder: str | os.PathLike,
    *,
    durations: Sequence[int] = (2, 60),
    fps: int = 24,
    size: int = 256,
    frame_counts: Sequence[int] = (16, 48),
    iters: int = 3,
    warmup: int = 1,
    min_seconds: float = 3.0,
) -> Table:
    """Videos/s of `load_video` against decoding every frame with PyAV, and against the original
    example's reader, on H.264 videos of each duration written into `folder`."""
    table = Table(
        f"Decoding H.264 mp4, {size}x{size} px at {fps} fps, CPU",
        dict(
            video="video", frames="frames kept", ours="load_video (videos/s)", every="every frame (videos/s)",
            speedup="speedup", original="original reader (videos/s)", speedup_original="speedup vs original",
            same="same frames",
        ),
    )
    for duration in durations:
        path = write_benchmark_video(Path(folder) / f"{duration}s.mp4", seconds=duration, fps=fps, size=size)
        for frames in frame_counts:
            seconds = time_calls(
                {
                    "ours": lambda: load_video(path, frames),
                    "every": lambda: decode_every_frame(path, frames),
                    "original": lambda: decode_like_original_example(path, frames),
                },
                iters=iters, warmup=warmup, min_seconds=min_seconds,
            )
            ours, every, original = seconds["ours"], seconds["every"], seconds["original"]
            loaded = load_video(path, frames)
            same = torch.equal(loaded, decode_every_frame(path, frames)) and torch.equal(
                loaded, decode_like_original_example(path, frames)
            )
            table.rows.append(dict(
                video=f"{duration} s ({duration * fps} frames)", frames=frames, ours=1 / ours, every=1 / every,
                speedup=every / ours, original=1 / original, speedup_original=original / ours, same=same,
            ))
    table.notes.append(
        "Every frame: `container.decode` of the whole stream, each frame converted to RGB, then sampled. Original "
        "reader: the VideoScore example's way (unthreaded decoding up to the last sampled frame, only sampled "
        "frames converted), with our exact sampling rule so that the frames can be compared."
    )
    return table


# --------------------------------------------------------------------------------------------
# 4. The real architecture: throughput and model FLOPs utilization

# Mantis-8B-Idefics2 (the base of VideoScore): SigLIP-so400m vision tower, a perceiver resampler to
# 64 tokens per image, and Mistral-7B.
VIDEOSCORE_SIZES = dict(
    vision_config=dict(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        patch_size=14, image_size=980,
    ),
    perceiver_config=dict(
        hidden_size=4096, resampler_n_latents=64, resampler_depth=3, resampler_n_heads=16,
        resampler_head_dim=96, num_key_value_heads=4,
    ),
    text_config=dict(
        model_type="mistral", vocab_size=32003, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
        pad_token_id=0,
    ),
    image_token_id=32001,
)

# The same structure, small enough for a CPU (checks the FLOPs formula and the code path).
SCALED_DOWN_SIZES = dict(
    vision_config=dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, patch_size=14,
        image_size=980,
    ),
    perceiver_config=dict(
        hidden_size=48, resampler_n_latents=64, resampler_depth=2, resampler_n_heads=4, resampler_head_dim=12,
        num_key_value_heads=2,
    ),
    text_config=dict(
        model_type="mistral", vocab_size=32003, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768, pad_token_id=0,
    ),
    image_token_id=32001,
)

# Text tokens of the query around the image tokens. The template has about 1,170 characters; with
# Mistral's 32k SentencePiece vocabulary (about 4 characters a token) and a short prompt that is about
# 300. The tokenizer is not available offline, so this is an estimate (50 tokens either way changes
# the FLOPs at 16 frames by under 2%).
TEXT_TOKENS = 300

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in TFLOP/s. The first name
# contained in torch.cuda.get_device_name() wins, so the more specific names come first.
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.2,
}


def videoscore_config(sizes: dict = VIDEOSCORE_SIZES) -> Idefics2Config:
    """An Idefics2 config with VideoScore's 5-output head, from `VIDEOSCORE_SIZES` or `SCALED_DOWN_SIZES`."""
    return Idefics2Config(**{k: dict(v) if isinstance(v, dict) else v for k, v in sizes.items()}, num_labels=5)


def image_patches(config: Idefics2Config, image_size: int) -> int:
    """Vision tokens of one frame of image_size x image_size px, after the processor's resize rule."""
    height, width = _IMAGE_SETTINGS.output_size(image_size, image_size)
    patch = config.vision_config.patch_size
    return (height // patch) * (width // patch)


def flops_per_video(config: Idefics2Config, *, frames: int, image_size: int = 378, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """Forward-pass FLOPs for one video, by component (2 FLOPs per multiply-add; matmuls and the patch
    convolution only; norms, activations, softmax and rotary embeddings are left out).

    Per frame, with P vision tokens (P = (s // 14)^2 for s x s px after the resize rule):
      vision   2 P (3 p^2) d_v  +  L_v [2 P (4 d_v^2 + 2 d_v f_v) + 4 P^2 d_v]
      project  2 P (2 d_v f + f d)                       (gated MLP into the text width)
      resample D [2 n d (h q) + 2 (P + n) d (2 k q) + 4 n (P + n) h q + 2 n (h q) d + 2 n (3 d 4d)]
    Per video, with T = text_tokens + n * frames tokens:
      text     L [2 T d (d + 2 d_kv) + 2 T d^2 + 2 T (3 d f) + 4 T^2 d]  +  2 d * 5 (the score head)
    d_v, f_v, L_v, p: vision width, MLP width, layers, patch; n latents, D perceiver layers with h
    query heads, k key/value heads of q dims; d, f, L, d_kv: text width, MLP width, layers, key/value
    width. Attention counts all T^2 (and P^2) query-key pairs, as the PaLM MFU convention does and as
    SDPA computes with a padding mask; a causal kernel skips about half of the text term.
    """
    vision, perceiver, text = config.vision_config, config.perceiver_config, config.text_config
    P = image_patches(config, image_size)
    d_v, f_v, patch = vision.hidden_size, vision.intermediate_size, vision.patch_size
    d, f = text.hidden_size, text.intermediate_size
    n, hq, kq = perceiver.resampler_n_latents, perceiver.resampler_n_heads * perceiver.resampler_head_dim, perceiver.num_key_value_heads * perceiver.resampler_head_dim
    d_kv = text.num_key_value_heads * (d // text.num_attention_heads)
    T = text_tokens + n * frames

    vision_flops = 2 * P * 3 * patch**2 * d_v + vision.num_hidden_layers * (
        2 * P * (4 * d_v**2 + 2 * d_v * f_v) + 4 * P**2 * d_v
    )
    project_flops = 2 * P * (2 * d_v * f + f * d)
    resample_flops = perceiver.resampler_depth * (
        2 * n * d * hq + 2 * (P + n) * d * 2 * kq + 4 * n * (P + n) * hq + 2 * n * hq * d + 2 * n * 3 * d * 4 * d
    )
    text_flops = text.num_hidden_layers * (
        2 * T * d * (d + 2 * d_kv) + 2 * T * d * d + 2 * T * 3 * d * f + 4 * T**2 * d
    ) + 2 * d * config.num_labels
    return {
        "vision": float(frames * vision_flops),
        "projection": float(frames * project_flops),
        "resampler": float(frames * resample_flops),
        "text": float(text_flops),
    }


def build_model(config: Idefics2Config, *, device: str | torch.device, dtype: torch.dtype, attn_implementation: str = "sdpa") -> VideoScoreModel:
    """A `VideoScoreModel` with random weights, created directly on `device` (no checkpoint needed)."""
    with torch.device(device):
        model = VideoScoreModel._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    return model.eval().requires_grad_(False)


def random_inputs(config: Idefics2Config, *, batch: int, frames: int, image_size: int, text_tokens: int, device, dtype) -> dict[str, torch.Tensor]:
    """Model inputs of VideoScore's shape: `text_tokens` random text tokens then 64 image tokens per
    frame; random pixels for image_size x image_size px frames after the resize rule."""
    generator = torch.Generator().manual_seed(0)
    height, width = _IMAGE_SETTINGS.output_size(image_size, image_size)
    latents = config.perceiver_config.resampler_n_latents
    text = torch.randint(3, config.image_token_id, (batch, text_tokens), generator=generator)
    text[:, 0] = 1  # BOS
    input_ids = torch.cat([text, torch.full((batch, latents * frames), config.image_token_id)], dim=1)
    return dict(
        input_ids=input_ids.to(device),
        attention_mask=torch.ones_like(input_ids, device=device),
        pixel_values=torch.randn(batch, frames, 3, height, width, generator=generator).to(device, dtype),
        pixel_attention_mask=torch.ones(batch, frames, height, width, dtype=torch.bool, device=device),
    )


def count_flops(model: VideoScoreModel, inputs: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass as torch's FlopCounterMode counts them (matmuls, convolutions, fused
    attention kernels; CPU SDPA is not counted, so use attn_implementation="eager" there)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(**inputs)
    return counter.get_total_flops()


def check_flops_formula(*, frames: int = 2, batch: int = 2, image_size: int = 378, text_tokens: int = 40) -> dict:
    """`flops_per_video` against torch's FlopCounterMode on the scaled-down config on CPU."""
    config = videoscore_config(SCALED_DOWN_SIZES)
    model = build_model(config, device="cpu", dtype=torch.float32, attn_implementation="eager")
    inputs = random_inputs(config, batch=batch, frames=frames, image_size=image_size, text_tokens=text_tokens, device="cpu", dtype=torch.float32)
    counted = count_flops(model, inputs)
    formula = batch * sum(flops_per_video(config, frames=frames, image_size=image_size, text_tokens=text_tokens).values())
    return dict(formula=formula, counted=counted, ratio=formula / counted)


def peak_bf16_tflops(device_name: str) -> float | None:
    return next((tflops for name, tflops in PEAK_BF16_TFLOPS.items() if name in device_name), None)


def measure_model(
    model, config: Idefics2Config, *, batch: int, frames: int, image_size: int, text_tokens: int, iters: int, warmup: int,
    device: torch.device, dtype: torch.dtype, peak_tflops: float | None,
) -> dict:
    """Videos/s, peak memory (MiB: CUDA allocator peak, or the CPU process's resident-set peak) and
    model FLOPs utilization of `model` (any callable taking the model inputs) at one shape.
    `warmup` >= 1: the first call is timed separately as `first_call_s`."""
    inputs = random_inputs(config, batch=batch, frames=frames, image_size=image_size, text_tokens=text_tokens, device=device, dtype=dtype)
    memory = PeakRSS()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        memory.start()
    with torch.inference_mode():
        start = time.perf_counter()
        model(**inputs)  # the first of the `warmup` calls, timed on its own: it includes compilation
        _sync(device)
        first = time.perf_counter() - start
        seconds = time_calls({"model": lambda: model(**inputs)}, iters=iters, warmup=warmup - 1, device=device)["model"]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else memory.peak_mib()
    achieved = batch * sum(flops_per_video(config, frames=frames, image_size=image_size, text_tokens=text_tokens).values()) / seconds
    return dict(
        videos_per_s=batch / seconds, seconds=seconds, first_call_s=first, peak_mib=peak, tflops=achieved / 1e12,
        mfu=achieved / (peak_tflops * 1e12) if peak_tflops else float("nan"),
    )


def bench_model(
    *,
    sizes: dict = VIDEOSCORE_SIZES,
    device: str | torch.device = "cuda",
    dtype: torch.dtype = torch.bfloat16,
    frame_counts: Sequence[int] = (16, 48),
    batches: Sequence[int] = (1, 4, 8, 16),
    image_size: int = 378,
    text_tokens: int = TEXT_TOKENS,
    iters: int = 5,
    warmup: int = 2,
    peak_tflops: float | None = None,
    optimize_batch: int | None = 8,
    compile: bool = True,
) -> list[Table]:
    """Throughput, peak memory and MFU of the architecture at each (frames, batch), then the
    optimizations at (frame_counts[0], optimize_batch) against the SDPA baseline: eager attention,
    FlashAttention-2 (when flash-attn is installed), torch.compile, and CUDA graphs through
    torch.compile(mode="reduce-overhead") (shapes are static per batch). `compile=False` leaves the
    last two out (they need a C++ compiler and take minutes on the full model)."""
    device = torch.device(device)
    config = videoscore_config(sizes)
    model = build_model(config, device=device, dtype=dtype, attn_implementation="sdpa")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    if peak_tflops is None and device.type == "cuda":
        peak_tflops = peak_bf16_tflops(device_name)
    parameters = sum(p.numel() for p in model.parameters())
    common = dict(
        image_size=image_size, text_tokens=text_tokens, iters=iters, warmup=warmup, device=device, dtype=dtype,
        peak_tflops=peak_tflops,
    )

    throughput = Table(
        f"VideoScore architecture ({_count(parameters)} parameters, random weights), {str(dtype).removeprefix('torch.')}, "
        f"SDPA, on {device_name}: {image_size}x{image_size} px frames",
        dict(
            frames="frames", batch="batch", videos_per_s="videos/s", vs_batch1=f"vs. batch {batches[0]}",
            tflop_per_video="TFLOP/video", tflops="TFLOP/s", mfu="MFU", peak_mib="peak memory (MiB)",
        ),
    )
    for frames in frame_counts:
        batch_one = None
        tflop = sum(flops_per_video(config, frames=frames, image_size=image_size, text_tokens=text_tokens).values()) / 1e12
        for batch in batches:
            try:
                result = measure_model(model, config, batch=batch, frames=frames, **common)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                throughput.rows.append(dict(frames=frames, batch=batch, videos_per_s="out of memory"))
                continue
            if batch_one is None:
                batch_one = result["videos_per_s"]
            throughput.rows.append(dict(
                frames=frames, batch=batch, videos_per_s=result["videos_per_s"], vs_batch1=result["videos_per_s"] / batch_one,
                tflop_per_video=tflop, tflops=result["tflops"], mfu=result["mfu"], peak_mib=result["peak_mib"],
            ))
    throughput.notes.append(
        f"FLOPs per video from `flops_per_video` ({text_tokens} text tokens + 64 per frame); MFU = achieved FLOP/s / "
        + (f"{peak_tflops:g} TFLOP/s (dense bf16 peak of this GPU)." if peak_tflops else "an unknown peak (pass --peak-tflops).")
    )
    tables = [throughput]
    if optimize_batch is None:
        return tables

    frames = frame_counts[0]
    optimizations = Table(
        f"Optimizations at {frames} frames, batch {optimize_batch}, against SDPA in eager PyTorch",
        dict(variant="variant", videos_per_s="videos/s", speedup="speedup", mfu="MFU", peak_mib="peak memory (MiB)", first_call_s="first call (s)"),
    )
    variants: list[tuple[str, Callable[[], object] | None, str]] = [
        ("SDPA (baseline)", lambda: model, ""),
        ("eager attention", lambda: _with_attention(model, "eager"), ""),
    ]
    try:
        import flash_attn  # noqa: F401

        variants.append(("FlashAttention-2", lambda: _with_attention(model, "flash_attention_2"), ""))
    except ImportError:
        variants.append(("FlashAttention-2", None, "skipped: flash-attn is not installed"))
    if compile:
        variants.append(("torch.compile", lambda: torch.compile(_with_attention(model, "sdpa")), ""))
        variants.append(("torch.compile + CUDA graphs (reduce-overhead)", lambda: torch.compile(_with_attention(model, "sdpa"), mode="reduce-overhead"), ""))
    baseline = None
    for name, make, reason in variants:
        if make is None:
            optimizations.rows.append(dict(variant=name, videos_per_s=reason))
            continue
        try:
            result = measure_model(make(), config, batch=optimize_batch, frames=frames, **common)
        except Exception as error:  # a variant that cannot run here is reported, not fatal
            optimizations.rows.append(dict(variant=name, videos_per_s=f"failed: {type(error).__name__}: {str(error)[:80]}"))
            continue
        baseline = baseline or result["videos_per_s"]
        optimizations.rows.append(dict(
            variant=name, videos_per_s=result["videos_per_s"], speedup=result["videos_per_s"] / baseline,
            mfu=result["mfu"], peak_mib=result["peak_mib"], first_call_s=result["first_call_s"],
        ))
    _with_attention(model, "sdpa")
    optimizations.notes.append("First call: the first forward pass at this shape (compilation and graph capture included).")
    tables.append(optimizations)
    return tables


def _count(number: int) -> str:
    return f"{number / 1e9:.2f}B" if number >= 1e9 else f"{number / 1e6:.1f}M"


def _with_attention(model: VideoScoreModel, implementation: str) -> VideoScoreModel:
    model.set_attn_implementation(implementation)
    return model


def bench_gpu(*, iters: int, peak_tflops: float | None, compile: bool) -> list[Table]:
    """Section 4 on CUDA; without CUDA, the FLOPs formula and the code path checked on CPU."""
    if torch.cuda.is_available():
        return bench_model(device="cuda", iters=max(iters, 5), peak_tflops=peak_tflops, compile=compile)
    check = check_flops_formula()
    tables = bench_model(
        sizes=SCALED_DOWN_SIZES, device="cpu", dtype=torch.float32, frame_counts=(2,), batches=(1, 2),
        iters=1, warmup=1, optimize_batch=2, compile=False,
    )
    tables[0].title = "Code-path check only (NOT a performance figure): " + tables[0].title.replace(
        "VideoScore architecture", "scaled-down VideoScore architecture")
    tables[0].notes.insert(0, (
        "GPU section skipped: torch.cuda.is_available() is False on this machine, so the GPU figures are pending. "
        f"The FLOPs formula was checked on CPU with the scaled-down config: formula {check['formula']:,.0f} FLOPs vs. "
        f"torch FlopCounterMode {check['counted']:,.0f} (ratio {check['ratio']:.4f}); the section's code ran on CPU."
    ))
    return tables


# --------------------------------------------------------------------------------------------
# Running and recording


def append_results(path: str | os.PathLike, tables: list[Table], *, started: datetime, elapsed: float, load_before: str, argv: Sequence[str]) -> None:
    """Append one run (date, machine, command, tables) to the markdown file at `path`."""
    path = Path(path)
    machine = _machine()
    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{shlex.join(['python', 'benchmarks/run.py', *argv])}`",
        *(f"- {key}: {value}" for key, value in machine.items()),
        f"- Load average (1, 5, 15 min) before: {load_before}; after: {_load()}; total time {elapsed / 60:.1f} min",
        "",
    ]
    text = "\n".join(lines) + "\n" + "\n".join(table.markdown() for table in tables)
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `python benchmarks/run.py --results benchmarks/RESULTS.md`.\n\n")
    with path.open("a") as results:
        results.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per measurement (the median is reported)")
    parser.add_argument("--results", metavar="FILE", help="append the tables, with date and machine, to this markdown file")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's peak bf16 TFLOP/s for MFU (default: looked up by name)")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile and CUDA graphs out of the GPU section")
    args = parser.parse_args(argv)
    unknown = [section for section in args.sections if section not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}.")
    args.sections = args.sections or list(SECTIONS)
    argv = list(sys.argv[1:] if argv is None else argv)

    transformers.utils.logging.disable_progress_bar()
    started, load_before, clock = datetime.now(timezone.utc), _load(), time.perf_counter()
    print(f"videoscore-reward benchmarks, {started:%Y-%m-%d %H:%M} UTC")
    for key, value in _machine().items():
        print(f"  {key}: {value}")
    print(f"  load average: {load_before}\n", flush=True)

    tables: list[Table] = []

    def report(new: list[Table]) -> None:
        for table in new:
            print(table.markdown(), flush=True)
        tables.extend(new)

    with tempfile.TemporaryDirectory(prefix="videoscore-bench-") as tmp:
        checkpoint = tiny_checkpoint(Path(tmp) / "tiny")
        if "preprocess" in args.sections:
            reward = VideoScoreReward.from_pretrained(checkpoint, device="cpu")
            devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
            report([bench_preprocess(reward, device=device, iters=args.iters) for device in devices])
        if "e2e" in args.sections:
            report([bench_e2e(checkpoint, iters=args.iters)])
        if "decode" in args.sections:
            report([bench_decode(tmp, iters=args.iters)])
        if "gpu" in args.sections:
            report(bench_gpu(iters=args.iters, peak_tflops=args.peak_tflops, compile=not args.no_compile))

    elapsed = time.perf_counter() - clock
    print(f"Done in {elapsed / 60:.1f} min.")
    if args.results:
        append_results(args.results, tables, started=started, elapsed=elapsed, load_before=load_before, argv=argv)
        print(f"Appended to {args.results}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
