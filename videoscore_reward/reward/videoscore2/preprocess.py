"""Frames to Qwen2.5-VL video inputs as tensor ops (no torchvision, which this processor needs).

Reproduces the official path: qwen-vl-utils picks the frames (2 fps) and the size (`smart_resize`,
bicubic with antialias, rounded back to 0-255 as torchvision does for uint8), then transformers'
Qwen2.5-VL processor rescales, normalizes and cuts 2x14x14 patches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .facts import VideoScore2Facts


def sample_frame_indices(total_frames: int, video_fps: float, facts: VideoScore2Facts) -> list[int]:
    """Indices of the frames the model sees of a video file, as qwen-vl-utils' `smart_nframes` at `facts.fps`.

    n = floor_even(min(max(total / video_fps * fps, min_frames), min(max_frames, total))), then
    round(linspace(0, total - 1, n)) in float32. A 1-frame video gives [0, 0] (the original raises).
    """
    if total_frames < 1:
        raise ValueError(f"total_frames must be >= 1, got {total_frames}.")
    if total_frames < facts.frame_factor:
        return [0] * facts.frame_factor
    if not video_fps or video_fps <= 0 or not math.isfinite(video_fps):
        raise ValueError(f"video_fps must be a positive number, got {video_fps}.")
    factor = facts.frame_factor
    min_frames = math.ceil(facts.min_frames / factor) * factor
    max_frames = math.floor(min(facts.max_frames, total_frames) / factor) * factor
    wanted = total_frames / video_fps * facts.fps
    count = min(min(max(wanted, min_frames), max_frames), total_frames)
    count = max(math.floor(count / factor) * factor, factor)
    return torch.linspace(0, total_frames - 1, count).round().long().tolist()


def resized_size(height: int, width: int, num_frames: int, facts: VideoScore2Facts) -> tuple[int, int]:
    """(height, width) after qwen-vl-utils' `smart_resize` with the family's per-frame pixel bounds."""
    factor = facts.patch_size * facts.merge_size
    ceiling = max(min(float(facts.max_pixels), facts.total_pixels / num_frames * facts.frame_factor), int(facts.min_pixels * 1.05))
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"Frames of {width}x{height} are too elongated: the aspect ratio must be below 200.")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > ceiling:
        beta = math.sqrt(height * width / ceiling)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < facts.min_pixels:
        beta = math.sqrt(facts.min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, h, w]: torchvision's tensor resize (bicubic, antialias, round)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    out = F.interpolate(frames.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp_(0, 255).round_().to(torch.uint8)


@dataclass
class VideoInputs:
    """One video as the model takes it.

    pixel_values: float32 [N, 3 * 2 * 14 * 14], N = t * h * w patches in the processor's order.
    grid_thw: (t, h, w) in patches; the video takes t * h * w / 4 tokens.
    """

    pixel_values: torch.Tensor
    grid_thw: tuple[int, int, int]

    @property
    def num_tokens(self) -> int:
        t, h, w = self.grid_thw
        return t * h * w // 4


def video_inputs(frames: torch.Tensor, facts: VideoScore2Facts) -> VideoInputs:
    """Sampled uint8 frames [T, 3, H, W] (any device) -> patches, as qwen-vl-utils + the processor do.

    An odd frame count is padded with the last frame (the processor's temporal padding).
    """
    count = frames.shape[0]
    frames = resize_frames(frames, resized_size(frames.shape[-2], frames.shape[-1], count, facts))
    step = facts.temporal_patch_size
    if count % step:
        frames = torch.cat([frames, frames[-1:].expand(step - count % step, -1, -1, -1)])
    # As the processor's torch path: rescale folded into mean and std, (x - 255 mean) / (255 std) in float32.
    mean = (torch.tensor(facts.image_mean) * 255).to(frames.device).view(1, 3, 1, 1)
    std = (torch.tensor(facts.image_std) * 255).to(frames.device).view(1, 3, 1, 1)
    pixels = (frames.float() - mean) / std
    t, c, height, width = pixels.shape
    p, m = facts.patch_size, facts.merge_size
    grid = (t // step, height // p, width // p)
    patches = pixels.reshape(grid[0], step, c, grid[1] // m, m, p, grid[2] // m, m, p)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(grid[0] * grid[1] * grid[2], c * step * p * p)
    return VideoInputs(patches.contiguous(), grid)
