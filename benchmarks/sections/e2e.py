"""Section `e2e`: scoring with the tiny checkpoint on CPU, one library call against the reference
loop, in videos/s and peak memory."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import torch

from videoscore_reward import VideoScoreReward
from videoscore_reward.testing import make_frames

from ..harness import PROMPT, PeakRSS, Table, time_calls
from ..reference import reference_inputs


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
        + " Score differences are float rounding only: the resize is Pillow's on both paths."
    )
    return table
