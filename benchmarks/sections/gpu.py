"""Section `gpu`: the real architecture with random weights, throughput and MFU, and what attention
kernels and torch.compile change; without CUDA, its code path and the FLOPs model checked on CPU."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence

import torch
from transformers import Idefics2Config

from videoscore_reward import VideoScoreModel

from ..flops import (
    SCALED_DOWN_SIZES, TEXT_TOKENS, VIDEOSCORE_SIZES, build_model, check_flops_formula, flops_per_video,
    peak_bf16_tflops, random_inputs, videoscore_config,
)
from ..harness import PeakRSS, Table, sync, time_calls


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
        sync(device)
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
