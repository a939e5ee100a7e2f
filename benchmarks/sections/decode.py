"""Section `decode`: files to frames, `load_video` against decoding every frame and against the
original example's reader."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from videoscore_reward import load_video
from videoscore_reward.testing import make_frames, write_test_video

from ..harness import Table, time_calls
from ..reference import decode_every_frame, decode_like_original_example


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
