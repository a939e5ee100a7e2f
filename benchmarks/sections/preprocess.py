"""Section `preprocess`: frames to model inputs, the library's `prepare_inputs` on the whole batch
against the checkpoint's processor one video at a time."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from videoscore_reward import VideoScoreReward
from videoscore_reward.testing import make_frames

from ..harness import PROMPT, Table, time_calls
from ..reference import reference_inputs


def bench_preprocess(
    reward: VideoScoreReward,
    *,
    frame_counts: Sequence[int] = (16, 48),
    sizes: Sequence[int] = (256, 512, 1024),
    videos: int = 2,
    iters: int = 3,
    warmup: int = 1,
    min_seconds: float = 2.0,
) -> Table:
    """Videos/s from uint8 frames to model inputs on the reward's device: the library's
    `prepare_inputs` on the whole batch in one call against the processor path one video at a time
    (text included in both).

    `reward` (float32, on the device to measure) supplies the processor and its settings; its model
    is not run.
    """
    device = reward.device
    # Every frame kept, as the processor path keeps them.
    reward = VideoScoreReward(reward.model, reward.processor, num_frames=None)
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
                    "ours": lambda: reward.prepare_inputs(clips, prompts),
                    "reference": lambda: [reference_inputs(reward.processor, clip, PROMPT, device) for clip in clips],
                },
                iters=iters, warmup=warmup, min_seconds=min_seconds, device=device,
            )
            ours, reference = seconds["ours"], seconds["reference"]
            batch = reward.prepare_inputs(clips, prompts)["pixel_values"]
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
