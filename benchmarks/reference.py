"""The reference paths the benchmarks measure against: what the original VideoScore example does
(frames -> PIL images -> the checkpoint's processor, one video at a time) and the plain ways to
decode a video file."""

from __future__ import annotations

import os

import av
import numpy as np
import torch
from PIL import Image

from videoscore_reward import sample_indices
from videoscore_reward.reward.prompt import build_query


def reference_inputs(processor, frames: torch.Tensor, prompt: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Model inputs for one video the original way: uint8 [T, 3, H, W] frames (any device) ->
    PIL images -> the checkpoint's processor -> tensors on `device`."""
    images = [Image.fromarray(frame) for frame in frames.permute(0, 2, 3, 1).cpu().numpy()]
    inputs = processor(text=build_query(prompt, len(images)), images=images, return_tensors="pt")
    return {name: tensor.to(device) for name, tensor in inputs.items()}



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


