"""Section `videoscore2`: VideoScore2's forced-prefix scoring against official generation
(vs2_inference.py's settings: one video per call, sampling at temperature 0.7, up to 1024 new tokens),
with the tiny random checkpoint on CPU, in seconds per video."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence

import torch

from videoscore_reward.reward.videoscore2 import VideoScore2Reward
from videoscore_reward.testing import make_frames

from ..harness import PROMPT, Table, time_calls


def bench_videoscore2(
    checkpoint: str | os.PathLike,
    *,
    seconds: Sequence[float] = (2.0, 5.0),
    size: int = 256,
    batch: int = 4,
    max_new_tokens: int = 1024,
    iters: int = 3,
    official_iters: int = 3,
    warmup: int = 1,
) -> Table:
    """Seconds per video of forced-prefix scoring (one call of `batch` videos) and of official generation
    (one video per call), for videos of `seconds` at 2 frames per second, `size` px square. The forced
    path is timed in interleaved rounds; generation, being long, `official_iters` times (seeds 0, 1, ...)
    in the same run; medians are reported.
    The tiny model rarely writes its end token, so generation mostly runs to `max_new_tokens`."""
    forced = VideoScore2Reward.from_pretrained(checkpoint, device="cpu", batch_size=batch)
    official = VideoScore2Reward(forced.model, forced.tokenizer, mode="official", batch_size=1)
    table = Table(
        f"VideoScore2, tiny checkpoint, CPU float32: forced prefix (batch {batch}) against official generation "
        f"(batch 1, sampling, up to {max_new_tokens} new tokens), {size}x{size} px",
        dict(video="video", frames="frames", tokens="video tokens", forced="forced (s/video)",
             official="official (s/video)", new_tokens="tokens generated", speedup="speedup"),
    )
    for duration in seconds:
        frames = max(4, int(duration * 2) // 2 * 2)
        videos = [make_frames(frames, size, size, seed=i) for i in range(batch)]
        timed = time_calls({"forced": lambda: forced(videos, PROMPT)}, iters=iters, warmup=warmup)
        generated, spent = [], []
        for i in range(official_iters):
            torch.manual_seed(i)  # the same sampled answers (and lengths) in every run of the benchmark
            start = time.perf_counter()
            out = official(videos[i % batch : i % batch + 1], PROMPT, max_new_tokens=max_new_tokens)
            spent.append(time.perf_counter() - start)
            generated.append(len(forced.tokenizer(out.texts[0], add_special_tokens=False)["input_ids"]))
        per_video = timed["forced"] / batch
        official_seconds = statistics.median(spent)
        table.rows.append(dict(
            video=f"{duration:g} s", frames=frames, tokens=forced.prepare(videos[0]).num_tokens, forced=per_video,
            official=official_seconds, new_tokens=int(statistics.median(generated)), speedup=official_seconds / per_video,
        ))
    table.notes.append(
        "Forced: one forward pass over video and query plus two cached steps of a few tokens, deterministic. "
        "Official: the score line comes after up to max_new_tokens of sampled reasoning; on the real 7B model "
        "each generated token costs a decoder pass, so the ratio grows with the answer's length."
    )
    return table
