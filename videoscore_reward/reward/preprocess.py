"""Frames to model inputs as tensor ops on the reward's device.

Reproduces the checkpoint's `Idefics2Processor` image path (resize with the shortest/longest edge
rule, rescale, normalize, pad, pixel attention mask) on whole batches, pixel for pixel. Only the
resize of frames on the CPU goes through Pillow, frame by frame, because there Pillow is both the
reference and the fastest; on a GPU everything stays on the device.
"""

from __future__ import annotations

from collections import defaultdict
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Real
from typing import Literal, Union

import numpy as np
import torch

from .sampling import sample_indices

Layout = Literal["BTCHW", "BCTHW"]
VideoBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


@dataclass(frozen=True)
class ImageSettings:
    """The parts of the checkpoint's image processor that the tensor path reproduces (the published
    checkpoints' values are in `checkpoints.FAMILIES`)."""

    shortest_edge: int
    longest_edge: int
    rescale_factor: float
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

    @classmethod
    def from_image_processor(cls, image_processor) -> "ImageSettings":
        """The settings of a loaded Idefics2 image processor; a ValueError for one the tensor path cannot
        reproduce (no shortest/longest edge size, or a resampling other than bilinear)."""
        size = image_processor.size
        shortest = size["shortest_edge"] if "shortest_edge" in size else None
        longest = size["longest_edge"] if "longest_edge" in size else None
        if not shortest or not longest:
            raise ValueError(
                f"Expected an Idefics2 image processor with size {{'shortest_edge', 'longest_edge'}}, got {dict(size)}."
            )
        resample = getattr(image_processor, "resample", 2)
        if int(resample) != 2:  # PIL's BILINEAR
            raise ValueError(f"Only bilinear resampling is supported, the image processor has resample={resample}.")
        return cls(
            shortest_edge=int(shortest),
            longest_edge=int(longest),
            rescale_factor=float(image_processor.rescale_factor),
            image_mean=tuple(float(m) for m in image_processor.image_mean),
            image_std=tuple(float(s) for s in image_processor.image_std),
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the Idefics2 resize rule: cap the long side, then floor both sides."""
        aspect_ratio = width / height
        if width >= height and width > self.longest_edge:
            width = self.longest_edge
            height = int(width / aspect_ratio)
        elif height > width and height > self.longest_edge:
            height = self.longest_edge
            width = int(height * aspect_ratio)
        return max(height, self.shortest_edge), max(width, self.shortest_edge)


def check_value_range(value_range) -> tuple[float, float]:
    """`value_range` as (low, high) floats, once checked: two finite numbers with low < high."""
    if isinstance(value_range, (str, bytes)) or not isinstance(value_range, Sequence) or len(value_range) != 2:
        raise ValueError(f"value_range must be two numbers (low, high), e.g. (0, 1) or (-1, 1); got {value_range!r}.")
    if not all(isinstance(v, Real) and not isinstance(v, bool) for v in value_range):
        raise TypeError(f"value_range must be two numbers (low, high), got {value_range!r}.")
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"value_range must be two finite numbers with low < high, got {value_range!r}.")
    return lo, hi


def check_videos(
    videos: VideoBatch, *, layout: Layout = "BTCHW", value_range: tuple[float, float] = (0.0, 1.0)
) -> list[torch.Tensor]:
    """Validate a batch of videos and return it as a list of [T, C, H, W] tensors (views, no copy).

    videos: a tensor [B, T, C, H, W] (or [B, C, T, H, W] with layout="BCTHW"), or a list of
    [T, C, H, W] tensors (or [C, T, H, W]) that may differ in length and size. uint8 tensors hold
    0-255; float tensors hold values in `value_range` ((0, 1) by default, (-1, 1) for VAE-style output).
    """
    if layout not in ("BTCHW", "BCTHW"):
        raise ValueError(f"layout must be 'BTCHW' or 'BCTHW', got {layout!r}.")
    lo, hi = check_value_range(value_range)
    item_layout = layout[1:]
    if isinstance(videos, torch.Tensor):
        if videos.ndim != 5:
            hint = " For a single video [T, C, H, W], pass [video] or video[None]." if videos.ndim == 4 else ""
            raise ValueError(f"videos must be a 5-D tensor {layout}, got shape {tuple(videos.shape)}.{hint}")
        items = list(videos.unbind(0))
    elif isinstance(videos, Sequence) and not isinstance(videos, (str, bytes)):
        items = list(videos)
        for i, video in enumerate(items):
            if not isinstance(video, torch.Tensor):
                raise TypeError(f"videos[{i}] must be a torch.Tensor {item_layout}, got {type(video).__name__}.")
            if video.ndim != 4:
                raise ValueError(f"videos[{i}] must be a 4-D tensor {item_layout}, got shape {tuple(video.shape)}.")
    else:
        raise TypeError(
            f"videos must be a tensor {layout} or a list of {item_layout} tensors, got {type(videos).__name__}."
        )
    if not items:
        raise ValueError("videos is an empty batch: expected at least one video.")

    out = []
    for i, video in enumerate(items):
        if layout == "BCTHW":
            video = video.transpose(0, 1)
        frames, channels, height, width = video.shape
        if channels != 3:
            raise ValueError(
                f"videos[{i}] has {channels} channels (shape {tuple(video.shape)} as {item_layout}); expected 3 (RGB)."
                + (" Did you mean layout='BCTHW'?" if layout == "BTCHW" and frames == 3 else "")
            )
        if frames == 0:
            raise ValueError(f"videos[{i}] has zero frames: expected at least one.")
        if height == 0 or width == 0:
            raise ValueError(f"videos[{i}] has an empty frame size {height}x{width}.")
        if video.dtype != torch.uint8 and not video.is_floating_point():
            raise TypeError(f"videos[{i}] has dtype {video.dtype}; expected uint8 (0-255) or a float dtype.")
        out.append(video)

    tolerance = 1e-3 * (hi - lo)
    for i, (vmin, vmax) in _value_ranges(videos, out).items():
        if vmin != vmin or vmax != vmax:
            raise ValueError(f"videos[{i}] contains NaN values.")
        if vmin in (float("inf"), float("-inf")) or vmax in (float("inf"), float("-inf")):
            raise ValueError(f"videos[{i}] contains infinite values.")
        if vmin < lo - tolerance or vmax > hi + tolerance:
            raise ValueError(
                f"videos[{i}] has values in [{vmin:.4g}, {vmax:.4g}], outside the declared value_range "
                f"({lo:g}, {hi:g}). Pass value_range=(-1, 1) for [-1, 1] data, or uint8 for 0-255."
            )
    return out


def _value_ranges(videos: VideoBatch, items: list[torch.Tensor]) -> dict[int, tuple[float, float]]:
    """(min, max) of each float video, by index. NaN and inf propagate into them.

    A batch tensor is reduced per video in one pass with one device sync, not one sync per video.
    """
    if isinstance(videos, torch.Tensor):
        if not videos.is_floating_point():
            return {}
        batch = videos.detach()
        ranges = torch.stack([batch.amin(dim=(1, 2, 3, 4)), batch.amax(dim=(1, 2, 3, 4))], dim=1)
        return dict(enumerate(tuple(pair) for pair in ranges.tolist()))
    return {
        i: tuple(float(v) for v in torch.aminmax(video.detach()))
        for i, video in enumerate(items)
        if video.is_floating_point()
    }


def to_uint8(frames: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """[T, C, H, W] uint8 as given, or float in `value_range` -> uint8 0-255 [T, C, H, W].

    The models were trained on 8-bit frames, so float input is rounded to the 8-bit grid the way
    diffusers' `numpy_to_pil` does; the scores then equal those of the frames saved as images.
    """
    if frames.dtype == torch.uint8:
        return frames
    lo, hi = value_range
    frames = (frames.float() - lo) * (255.0 / (hi - lo))
    return frames.round_().clamp_(0, 255).to(torch.uint8)


# Pillow's fixed-point precision for 8-bit images (libImaging/Resample.c).
_PIL_PRECISION_BITS = 22


@lru_cache(maxsize=64)
def _pil_bilinear_taps(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pillow's bilinear taps for resampling `in_size` samples to `out_size`.

    Returns, for each of the K taps, the input index of every output sample, int64 [K, out_size],
    and its fixed-point weight, int32 [K, out_size] (unused taps have weight 0); one row per tap keeps
    each tap's indices contiguous. The arithmetic is Pillow's `precompute_coeffs`
    and `normalize_coeffs_8bpc`, step for step in double precision, so the integers are Pillow's own.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1
    index, weight = [], []
    for out in range(out_size):
        center = (out + 0.5) * scale
        first = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - first
        raw = [max(0.0, 1.0 - abs((first + k - center + 0.5) * (1.0 / filterscale))) for k in range(count)]
        total = 0.0
        for w in raw:  # summed in Pillow's order: the rounding below depends on it
            total += w
        normalized = [w / total for w in raw] if total != 0.0 else raw
        weight.append([int(w * (1 << _PIL_PRECISION_BITS) + 0.5) for w in normalized])
        index.append(list(range(first, first + count)))
    taps = max(len(row) for row in index)  # unused taps read the first input with weight 0
    index = [row + [row[0]] * (taps - len(row)) for row in index]
    weight = [row + [0] * (taps - len(row)) for row in weight]
    return torch.tensor(index, dtype=torch.int64).T.contiguous(), torch.tensor(weight, dtype=torch.int32).T.contiguous()


def _resample_rows_like_pil(samples: torch.Tensor, out_size: int) -> torch.Tensor:
    """Resample dim -2 of uint8 [..., L, M] samples to uint8 [..., out_size, M] with Pillow's 8-bit arithmetic.

    Each tap gathers whole contiguous rows; products and sums are exact in int32.
    """
    index, weight = (t.to(samples.device) for t in _pil_bilinear_taps(samples.shape[-2], out_size))
    samples = samples.to(torch.int32)
    shape = (*samples.shape[:-2], out_size, samples.shape[-1])
    total = torch.full(shape, 1 << (_PIL_PRECISION_BITS - 1), dtype=torch.int32, device=samples.device)
    tap = torch.empty_like(total)
    for tap_index, tap_weight in zip(index, weight):
        torch.index_select(samples, -2, tap_index, out=tap)
        total.add_(tap.mul_(tap_weight[:, None]))
    return total.bitwise_right_shift_(_PIL_PRECISION_BITS).clamp_(0, 255).to(torch.uint8)


def _resize_like_pil(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's bilinear resize of uint8 [N, C, H, W] frames, pixel for pixel.

    The processor resizes 8-bit PIL images, so the resized frames must be Pillow's. On CPU that is
    Pillow itself (its SIMD code is the fastest there); elsewhere `_resize_emulating_pil` repeats its
    arithmetic as tensor ops.
    """
    if frames.device.type != "cpu":
        # In chunks: the int32 intermediates take 16 bytes per input pixel.
        return torch.cat([_resize_emulating_pil(chunk, size) for chunk in frames.split(32)])
    from PIL import Image

    height, width = size
    images = frames.permute(0, 2, 3, 1).contiguous().numpy()
    resized = np.stack([np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR)) for image in images])
    return torch.from_numpy(resized).permute(0, 3, 1, 2)


def _resize_emulating_pil(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`_resize_like_pil` as tensor ops on any device, equal to Pillow's output.

    Pillow filters in two passes with integer weights and rounding to 8 bits after each; this
    repeats that arithmetic in int32. Like `Image.resize`, it goes horizontal first unless the image
    is over 100 times taller than wide and gets shorter.
    """
    height, width = size
    in_height, in_width = frames.shape[-2:]
    vertical_first = in_height > 100 * in_width and height < in_height
    if vertical_first:
        frames = _resample_rows_like_pil(frames, height)
    if in_width != width:
        frames = _resample_rows_like_pil(frames.transpose(-1, -2).contiguous(), width).transpose(-1, -2)
    if not vertical_first and in_height != height:
        frames = _resample_rows_like_pil(frames, height)
    return frames


@lru_cache(maxsize=8)
def _normalization_table(settings: ImageSettings) -> torch.Tensor:
    """float32 [3, 256]: the model input for each 8-bit level of each channel.

    Computed as the processor does it (rescale in float64, round to float32, then normalize in
    float32), so the values are its own to the last bit; float32 arithmetic of our own differs by
    one ulp on 111 of the 256 levels, which flips about 1% of the values once cast to bfloat16.
    """
    rescaled = (torch.arange(256, dtype=torch.float64) * settings.rescale_factor).float()
    mean = torch.tensor(settings.image_mean, dtype=torch.float32).view(3, 1)
    std = torch.tensor(settings.image_std, dtype=torch.float32).view(3, 1)
    return (rescaled - mean) / std


def preprocess_videos(
    videos: list[torch.Tensor],
    *,
    num_frames: int | None,
    settings: ImageSettings,
    device: torch.device,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Pixel inputs of the model for a batch of validated videos.

    videos: [T, C, H, W] tensors (uint8, or float in `value_range`) from `check_videos`.
    Returns pixel_values float32 [B, F_max, 3, H_max, W_max] (normalized, zero padded),
    pixel_attention_mask bool [B, F_max, H_max, W_max] (True on real pixels), and the number of
    frames kept per video. Frames are sampled with `sample_indices` before anything else, so only
    the kept frames travel to `device`.
    """
    table = _normalization_table(settings).to(device)
    channels = torch.arange(3, device=device).view(1, 3, 1, 1)
    sampled = []
    for video in videos:
        index = torch.tensor(sample_indices(video.shape[0], num_frames), device=video.device)
        sampled.append(to_uint8(video.index_select(0, index).to(device, non_blocking=True), value_range))

    counts = [frames.shape[0] for frames in sampled]
    sizes = [settings.output_size(*frames.shape[-2:]) for frames in sampled]
    max_height = max(height for height, _ in sizes)
    max_width = max(width for _, width in sizes)
    pixel_values = torch.zeros(len(sampled), max(counts), 3, max_height, max_width, device=device)
    pixel_mask = torch.zeros(len(sampled), max(counts), max_height, max_width, dtype=torch.bool, device=device)
    # One resize per distinct frame size: a batch from a pipeline is one call.
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, frames in enumerate(sampled):
        by_size[tuple(frames.shape[-2:])].append(i)
    for (height, width), members in by_size.items():
        frames = torch.cat([sampled[i] for i in members])
        out_height, out_width = sizes[members[0]]
        if (out_height, out_width) != (height, width):
            frames = _resize_like_pil(frames, (out_height, out_width))
        for i, part in zip(members, frames.split([counts[i] for i in members])):
            pixel_values[i, : counts[i], :, :out_height, :out_width] = table[channels, part.int()]
            pixel_mask[i, : counts[i], :out_height, :out_width] = True
    return pixel_values, pixel_mask, counts
