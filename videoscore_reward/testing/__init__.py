"""Helpers to try and test the package offline: a tiny random VideoScore checkpoint
(`tiny_checkpoint`, written by `videoscore_reward.reward.tiny`), deterministic frames and test videos.

The scores of a tiny checkpoint are meaningless; the files, the code path and the tensor shapes are
those of the real checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..reward.checkpoints import TINY_RANDOM_MARKER
from ..reward.tiny import tiny_checkpoint

__all__ = [
    "TINY_RANDOM_MARKER", "make_frames", "tiny_checkpoint", "write_audio_only", "write_test_video", "write_truncated_video",
]


def make_frames(num_frames: int, height: int, width: int, *, seed: int = 0) -> torch.Tensor:
    """Deterministic frames uint8 [T, 3, H, W] that differ from frame to frame.

    Frame t is a smooth colour gradient shifted by t, with a white 8x8 block in the top-left corner
    (to see orientation), so frames survive lossy codecs recognisably and sampling is checkable.
    """
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(3, generator=generator) * 255
    y = torch.arange(height).view(1, 1, height, 1).float()
    x = torch.arange(width).view(1, 1, 1, width).float()
    t = torch.arange(num_frames).view(num_frames, 1, 1, 1).float()
    frames = (phase.view(1, 3, 1, 1) + 2 * y + x + 12 * t) % 256
    frames[:, :, :8, :8] = 255
    return frames.to(torch.uint8)


def write_test_video(
    path: str | os.PathLike,
    num_frames: int = 20,
    width: int = 64,
    height: int = 48,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: int = 8,
    rotation: int | None = None,
    frames: torch.Tensor | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode `frames` (uint8 [T, 3, H, W]; default `make_frames`) to `path` with PyAV.

    The container follows the file extension (.mp4, .webm, .mkv, .mov, .avi, .gif, ...).
    `rotation` sets the display-matrix rotation (degrees counterclockwise), as phones do.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frames is None:
        frames = make_frames(num_frames, height, width)
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[-2:]
        stream.pix_fmt = pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames.permute(0, 2, 3, 1).numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_truncated_video(path: str | os.PathLike, whole: str | os.PathLike, num_frames: int = 60,
                          width: int = 64, height: int = 48) -> Path:
    """A video cut off halfway, as an interrupted download or recording leaves it: the whole video
    (`write_test_video`, 8 fps) is written to `whole`, its first half to `path`. An MP4/MOV gets its
    index first ("faststart"), so the header still announces all `num_frames` frames."""
    path, whole = Path(path), Path(whole)
    index_first = {"movflags": "faststart"} if whole.suffix.lower() in (".mp4", ".m4v", ".mov") else None
    data = write_test_video(whole, num_frames, width, height, options=index_first).read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def write_audio_only(path: str | os.PathLike, num_packets: int = 10) -> Path:
    """An AAC file of silence with no video stream (`num_packets` frames of 1024 samples at 16 kHz)."""
    import av
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(num_packets):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
