"""Decoding video files into frame tensors with PyAV."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import av
import numpy as np
import torch

from .sampling import sample_indices


class VideoLoadError(ValueError):
    """A file could not be decoded into frames; the message names the file and the reason."""


def _open(path: Path):
    try:
        return av.open(str(path))
    except (av.error.InvalidDataError, av.error.EOFError) as error:
        raise VideoLoadError(f"{path} is not a readable video file ({error}).") from None
    except (av.error.FFmpegError, ValueError) as error:
        raise VideoLoadError(f"{path} could not be opened as a video ({error}).") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise VideoLoadError(f"{path} has no video stream (streams found: {', '.join(kinds)}).")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame- and slice-threaded decoding
    return stream


def _count_frames(path: Path) -> int:
    """Frame count by demuxing packets (no decoding), for containers whose header has none."""
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
        except av.error.FFmpegError:
            return 0


def _decode(path: Path, keep: list[int]) -> tuple[list[np.ndarray], int, Exception | None]:
    """One sequential pass that converts only the frames in `keep` to RGB.

    Returns the kept frames, how many frames were decoded, and the decoding error if one stopped it.
    """
    wanted = set(keep)
    last = max(keep) if keep else -1
    frames: list[np.ndarray] = []
    decoded = 0
    with _open(path) as container:
        stream = _video_stream(container, path)
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index in wanted:
                    image = frame.to_ndarray(format="rgb24")
                    turns = round((frame.rotation or 0) / 90) % 4
                    if turns:
                        # PyAV reports the counterclockwise rotation the display matrix applies.
                        image = np.rot90(image, k=turns)
                    frames.append(np.ascontiguousarray(image))
                if index >= last:
                    break
        except av.error.FFmpegError as error:
            return frames, decoded, error
    return frames, decoded, None


def load_video(path: str | os.PathLike, num_frames: int | None = None) -> torch.Tensor:
    """Decode the frames VideoScore looks at from a video file.

    Frames are sampled with `sample_indices` (num_frames=None keeps all) from the frame count in the
    container header, or from the demuxed packet count where the header has none, and decoded in one
    sequential threaded pass that stops after the last sampled frame. Rotation metadata is applied
    and any pixel format is converted to RGB.

    Returns uint8 [T, 3, H, W] with values 0-255. A truncated or corrupt file gives the frames that
    decoded, with a warning; `VideoLoadError` (a ValueError) if none did, or if the file is empty, not a
    video, or audio only; FileNotFoundError if it does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Video file not found: {path}")
    if path.is_dir():
        raise VideoLoadError(f"{path} is a directory, expected a video file.")
    if path.stat().st_size == 0:
        raise VideoLoadError(f"{path} is empty (0 bytes), expected a video file.")

    with _open(path) as container:
        total = _video_stream(container, path).frames
    if total <= 0:
        total = _count_frames(path)
        if total <= 0:
            raise VideoLoadError(f"{path} has a video stream but no frames could be read.")

    keep = sample_indices(total, num_frames)
    frames, decoded, error = _decode(path, keep)
    if len(frames) < len(keep):
        if decoded == 0:
            reason = f": {error}" if error is not None else ""
            raise VideoLoadError(f"{path}: no frame could be decoded{reason}.")
        warnings.warn(
            f"{path} looks truncated or corrupt ({error or 'the stream ended early'}): the container announces "
            f"{total} frames but {decoded} decoded; sampling from those.",
            stacklevel=2,
        )
        # Sample uniformly from what is really there rather than from the head of the video.
        keep = sample_indices(decoded, num_frames)
        frames, decoded, error = _decode(path, keep)
    if any(f.shape != frames[0].shape for f in frames):
        raise VideoLoadError(f"{path}: frame size changes within the stream ({frames[0].shape[:2]} then others).")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
