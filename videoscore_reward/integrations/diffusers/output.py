"""What a diffusers video pipeline returns, as input for a reward."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...reward import BaseReward, RewardOutput

_LATENT_HINT = (
    "it looks like latents (output_type='latent'): call the pipeline with output_type='pt' (or 'np'/'pil'), "
    "or decode the latents first"
)


def pipeline_frames(frames) -> torch.Tensor | list[torch.Tensor]:
    """What a text-to-video pipeline returns (`output.frames`), as input for a reward.

    output_type="pt": float [B, F, C, H, W] in [0, 1], returned as is (no device round trip);
    "np": float [B, F, H, W, C] in [0, 1] -> tensor [B, F, C, H, W];
    "pil": a list (per video) of lists of PIL images -> list of uint8 [F, 3, H, W].
    Latents (output_type="latent") are refused with a ValueError that says so.
    """
    if isinstance(frames, torch.Tensor):
        if frames.ndim != 5 or frames.shape[2] != 3 or (frames.is_floating_point() and not _in_unit_range(frames)):
            raise ValueError(f"Pipeline frames of shape {tuple(frames.shape)} are not a video [B, F, 3, H, W] in [0, 1]: {_LATENT_HINT}.")
        return frames
    if isinstance(frames, np.ndarray):
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"np pipeline output must be [B, F, H, W, 3], got shape {frames.shape}.")
        return torch.from_numpy(frames).permute(0, 1, 4, 2, 3)
    if isinstance(frames, Sequence) and not isinstance(frames, str) and frames and isinstance(frames[0], Sequence):
        return [torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in video])).permute(0, 3, 1, 2) for video in frames]
    raise TypeError(
        f"Expected pipeline frames as a tensor [B, F, C, H, W], an array [B, F, H, W, C] or lists of PIL images, "
        f"got {type(frames).__name__}."
    )


def _in_unit_range(frames: torch.Tensor) -> bool:
    low, high = torch.aminmax(frames.detach())  # one device sync for both ends
    return bool(low >= 0) and bool(high <= 1)


def expand_prompts(prompts: str | Sequence[str], count: int) -> list[str]:
    """One prompt per video of a pipeline call that made `count` videos.

    A single string is used for all; n prompts for n * k videos (num_videos_per_prompt=k) are
    repeated k times each, in the pipeline's order (all videos of the first prompt first).
    """
    if isinstance(prompts, str):
        return [prompts] * count
    prompts = list(prompts)
    if prompts and count % len(prompts) == 0:
        return [p for p in prompts for _ in range(count // len(prompts))]
    raise ValueError(f"Got {len(prompts)} prompts for {count} videos: expected one per video, or one per prompt of a "
                     f"call with num_videos_per_prompt.")


def score_pipeline_output(reward: BaseReward, output, prompts: str | Sequence[str]) -> RewardOutput:
    """Score what a diffusers video pipeline returned: its output object, the `return_dict=False` tuple,
    or `.frames`. `prompts` are those of the call (expanded for num_videos_per_prompt)."""
    if isinstance(output, tuple):
        output = output[0]
    frames = pipeline_frames(getattr(output, "frames", output))
    return reward(frames, expand_prompts(prompts, len(frames)))


def save_video(video: torch.Tensor, path: str | os.PathLike, *, fps: int = 8) -> Path:
    """Write one video, float [F, C, H, W] in [0, 1] (a "pt" pipeline output's item), as H.264 mp4 with
    PyAV (diffusers' `export_to_video` needs imageio or OpenCV). Height and width must be even."""
    from ...testing import write_test_video  # the package's one PyAV writer

    frames = (video.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return write_test_video(path, frames=frames, fps=fps)
