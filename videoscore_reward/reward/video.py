"""Decoding video files into frame tensors with PyAV."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import av
import numpy as np
import torch

from .sampling import sample_indices


FrameSampler = Callable[[int, float], list[int]]
"""`sampler(total_frames, fps) -> indices`: which frames a model looks at, for models that sample by
time (VideoScore2: 2 per second). fps is 0.0 where the file does not say."""
Sampling = Union[int, None, FrameSampler]
"""What to decode: a frame count (`sample_indices`), None for every frame, or a `FrameSampler`."""

MAX_DECODED_BYTES = 2 * 1024**3
"""Default budget for the decoded frames of one video (uint8 RGB, T x H x W x 3 bytes): 2 GiB holds
48 sampled 4K frames, and refuses 16 frames of 8192x8192 (3 GiB) before anything is decoded."""


class VideoLoadError(ValueError):
    """A file could not be decoded into frames; the message names the file and the reason."""


class VideoTooLargeError(VideoLoadError):
    """The frames a file would decode to do not fit the memory budget (checked before decoding)."""


def _open(path: Path):
    try:
        return av.open(str(path))
    except av.error.PermissionError:
        raise PermissionError(f"Cannot read {path}: permission denied.") from None
    except (av.error.InvalidDataError, av.error.EOFError) as error:
        hint = (
            " If it is an MP4/MOV cut short (an interrupted recording or download), its index (moov atom) is missing."
            if path.suffix.lower() in (".mp4", ".m4v", ".mov")
            else ""
        )
        raise VideoLoadError(f"{path} is not a readable video file ({_reason(error)}).{hint}") from None
    except (av.error.FFmpegError, ValueError) as error:
        raise VideoLoadError(f"{path} could not be opened as a video ({_reason(error)}).") from None


def _reason(error: Exception) -> str:
    """FFmpeg's message without the errno and file name PyAV adds to it."""
    return getattr(error, "strerror", None) or str(error)


def _video_stream(container, path: Path):
    """The first video stream that is a video: cover art (an attached picture) is not."""
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        if container.streams.video:
            raise VideoLoadError(f"{path} has no video, only a cover image (attached picture).")
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise VideoLoadError(f"{path} has no video stream (streams found: {', '.join(kinds)}).")
    stream = videos[0]
    stream.thread_type = "AUTO"  # frame- and slice-threaded decoding
    return stream


def _declared_end(container) -> float | None:
    """Where the container says its streams end, in seconds; None if it does not say."""
    if not container.duration:
        return None
    return ((container.start_time or 0) + container.duration) / av.time_base


@dataclass
class _Scan:
    frames: int  # non-empty video packets that the demuxer does not mark for discarding
    end: float | None  # where the last packet of any stream ends, in seconds
    error: Exception | None  # what stopped demuxing early


def _scan(path: Path) -> _Scan:
    """Demux every stream (no decoding): the video frame count and where the data really ends."""
    frames, end, error = 0, None, None
    with _open(path) as container:
        video = _video_stream(container, path)
        try:
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    packet_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    end = packet_end if end is None else max(end, packet_end)
                if packet.stream is video and packet.size > 0 and not packet.is_discard:
                    frames += 1
        except av.error.FFmpegError as stop:
            error = stop
    return _Scan(frames, end, error)


@dataclass
class _DecodePass:
    frames: list[np.ndarray]  # the kept frames, RGB [H, W, 3]
    count: int = 0  # frames the decoder gave, kept or not
    bad_packets: int = 0
    bad_packet_error: Exception | None = None
    stopped: Exception | None = None  # a container error that ended reading


def _decode_pass(path: Path, keep: list[int]) -> _DecodePass:
    """One sequential pass that converts only the frames in `keep` to RGB, stopping after the last.

    A packet that fails to decode is skipped, so one corrupt packet costs its frames, not the rest
    of the video.
    """
    wanted = set(keep)
    last = max(keep) if keep else -1
    result = _DecodePass([])
    with _open(path) as container:
        stream = _video_stream(container, path)
        packets = container.demux(stream)
        while result.count <= last:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                result.stopped = error
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError as error:
                result.bad_packets += 1
                result.bad_packet_error = error
                continue
            for frame in frames:
                if result.count in wanted:
                    image = frame.to_ndarray(format="rgb24")
                    turns = round((frame.rotation or 0) / 90) % 4
                    if turns:
                        # PyAV reports the counterclockwise rotation the display matrix applies.
                        image = np.rot90(image, k=turns)
                    result.frames.append(np.ascontiguousarray(image))
                result.count += 1
    return result


def _check_budget(path: Path, frames: int, width: int, height: int, max_bytes: int | None) -> None:
    """Refuse, before decoding, a video whose `frames` decoded RGB frames would not fit `max_bytes`."""
    needed = frames * width * height * 3
    if max_bytes is not None and needed > max_bytes:
        raise VideoTooLargeError(
            f"{path}: {frames} frame(s) of {width}x{height} would take {needed / 2**20:,.0f} MiB decoded, "
            f"over the budget of {max_bytes / 2**20:,.0f} MiB (max_bytes); downscale the video or raise the budget."
        )


@dataclass(frozen=True)
class VideoDamage:
    """What is wrong with a damaged video file whose remaining frames were still used.

    problems: one phrase per problem ("3 packet(s) could not be decoded (...)").
    frames_decoded: how many frames did decode; the sampled frames come from these.
    """

    problems: tuple[str, ...]
    frames_decoded: int

    def describe(self, name: str | os.PathLike) -> str:
        """One line naming the file as `name` (a path, or an upload's file name)."""
        return f"{name} looks damaged: {'; '.join(self.problems)}. Sampled from the {self.frames_decoded} frames that decoded."


def load_video(path: str | os.PathLike, num_frames: Sampling = None, max_bytes: int | None = MAX_DECODED_BYTES) -> torch.Tensor:
    """Decode the frames VideoScore looks at from a video file.

    Frames are sampled with `sample_indices` (num_frames=None keeps all) from the frame count in the
    container header, or from the demuxed packet count where the header has none, and decoded in one
    sequential threaded pass that stops after the last sampled frame. Where fewer frames decode than
    were counted (header counts that include dropped or edited-out frames, damage), frames are
    sampled again from those that did. `num_frames` may also be a `FrameSampler` (a model that samples
    by time); it may take a frame twice. Rotation metadata is applied, any pixel format is converted
    to RGB, and cover art is not taken for the video.

    max_bytes: budget for the decoded frames (sampled frames x H x W x 3 bytes), checked from the
    header before anything is decoded; a video over it raises `VideoTooLargeError` naming the file,
    its size and the budget. Default `MAX_DECODED_BYTES` (2 GiB); None for no limit.

    Returns uint8 [T, 3, H, W] with values 0-255. A damaged file (truncated, undecodable packets) gives
    the frames that decoded, with a warning that says what is wrong; `VideoLoadError` (a ValueError)
    if no frame decodes, or if the file is empty, not a video, or audio only; FileNotFoundError if it
    does not exist.
    """
    frames, damage = read_video(path, num_frames, max_bytes)
    if damage is not None:
        warnings.warn(damage.describe(path), stacklevel=2)
    return frames


def read_video(
    path: str | os.PathLike, num_frames: Sampling = None, max_bytes: int | None = MAX_DECODED_BYTES
) -> tuple[torch.Tensor, VideoDamage | None]:
    """`load_video` without the warning: the frames uint8 [T, 3, H, W], and what is wrong with a
    damaged file (None for a sound one) as a value, for callers that report it per file (decode
    threads, where warnings cannot be caught safely). Raises as `load_video` does."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Video file not found: {path}")
    if path.is_dir():
        raise VideoLoadError(f"{path} is a directory, expected a video file.")
    if path.stat().st_size == 0:
        raise VideoLoadError(f"{path} is empty (0 bytes), expected a video file.")

    with _open(path) as container:
        stream = _video_stream(container, path)
        total = stream.frames
        declared_end = _declared_end(container)
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
    scan = None
    if total <= 0:
        scan = _scan(path)
        total = scan.frames
        if total <= 0:
            raise VideoLoadError(f"{path} has a video stream but no frames could be read.")

    def pick(count: int) -> list[int]:
        if callable(num_frames):
            return num_frames(count, float(rate or 0.0))
        return sample_indices(count, num_frames)

    order = pick(total)
    keep = sorted(set(order))  # a sampler may take a frame twice; it is decoded once
    _check_budget(path, len(order), width, height, max_bytes)
    decoded = _decode_pass(path, keep)
    if len(decoded.frames) < len(keep):
        if decoded.count == 0:
            error = decoded.stopped or decoded.bad_packet_error
            raise VideoLoadError(f"{path}: no frame could be decoded" + (f" ({_reason(error)})." if error else "."))
        # Sample uniformly from what is really there rather than from the head of the video.
        order = pick(decoded.count)
        keep = sorted(set(order))
        decoded = _decode_pass(path, keep)
        scan = scan or _scan(path)

    problems = []
    if decoded.bad_packets:
        problems.append(f"{decoded.bad_packets} packet(s) could not be decoded ({_reason(decoded.bad_packet_error)})")
    stopped = decoded.stopped or (scan.error if scan else None)
    if stopped:
        problems.append(f"reading stopped early ({_reason(stopped)})")
    if scan and scan.end is not None and declared_end is not None:
        # Two frames or 0.2 s of slack: packet durations are not always exact.
        slack = max(2 / float(rate) if rate else 0.0, 0.2)
        if scan.end < declared_end - slack:
            problems.append(f"its data ends at {scan.end:.2f} s of the {declared_end:.2f} s the container declares")
    sizes = sorted({f.shape[:2] for f in decoded.frames})
    if len(sizes) > 1:
        described = ", ".join(f"{w}x{h}" for h, w in sizes)
        raise VideoLoadError(f"{path}: the frame size changes within the video ({described}); expected one size.")
    position = {index: i for i, index in enumerate(keep)}
    chosen = [decoded.frames[position[index]] for index in order] if len(order) != len(keep) == len(decoded.frames) else decoded.frames
    frames = torch.from_numpy(np.stack(chosen)).permute(0, 3, 1, 2).contiguous()
    return frames, VideoDamage(tuple(problems), decoded.count) if problems else None
