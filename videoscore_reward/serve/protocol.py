"""The wire format of the reward server: safetensors bytes in, JSON out.

A score request is one safetensors file (the body of ``POST /score``) holding the videos as tensors
``video.0`` ... ``video.{B-1}``, each uint8 or float [T, C, H, W] in the dtype the caller had, so the
server sees the caller's numbers bit for bit, and two metadata entries: ``prompts`` (a JSON list of B
strings) and ``value_range`` (a JSON pair, the range of float videos). safetensors holds no code, so a
payload cannot run anything when it is read. The answer is JSON: ``{"scores": [[...], ...], "rewards":
[...]}``; float32 values written as Python floats (doubles) read back as the same float32.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from safetensors.torch import load as _load_tensors
from safetensors.torch import save as _save_tensors

CONTENT_TYPE = "application/octet-stream"
ALLOWED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)


class ProtocolError(ValueError):
    """A request that cannot be read as a score request; the message says what is wrong."""


@dataclass
class ScoreRequest:
    """A decoded score request: B videos uint8 or float [T, C, H, W], B prompts, the float value range."""

    videos: list[torch.Tensor]
    prompts: list[str]
    value_range: tuple[float, float] = (0.0, 1.0)

    def __len__(self) -> int:
        return len(self.videos)


def encode_request(videos: Sequence[torch.Tensor], prompts: Sequence[str],
                   value_range: tuple[float, float] = (0.0, 1.0)) -> bytes:
    """The body of a score request. videos: B tensors [T, C, H, W] (moved to the CPU, dtype kept)."""
    tensors, storages = {}, set()
    for i, video in enumerate(videos):
        video = video.detach().cpu().contiguous()
        storage = video.untyped_storage()
        # safetensors refuses tensors that share memory (views of one batch, a video passed twice).
        if storage.data_ptr() in storages or storage.nbytes() != video.nbytes:
            video = video.clone()
        storages.add(video.untyped_storage().data_ptr())
        tensors[f"video.{i}"] = video
    metadata = {"prompts": json.dumps(list(prompts)), "value_range": json.dumps([float(v) for v in value_range])}
    return _save_tensors(tensors, metadata=metadata)


def _metadata(body: bytes) -> dict[str, str]:
    # safetensors' header: 8 bytes little-endian length, then a JSON object whose "__metadata__" entry
    # holds the string metadata; `safetensors.torch.load` returns the tensors only.
    if len(body) < 8:
        raise ProtocolError(f"the body is {len(body)} bytes, too short for a safetensors file.")
    (length,) = struct.unpack("<Q", body[:8])
    if length > len(body) - 8:
        raise ProtocolError("the body is not a safetensors file (its header length exceeds the body).")
    try:
        header = json.loads(body[8 : 8 + length])
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the body is not a safetensors file (its header is not JSON).") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise ProtocolError("the safetensors file has no metadata: expected 'prompts' and 'value_range'.")
    return metadata


def decode_request(body: bytes) -> ScoreRequest:
    """Read a score request; raises `ProtocolError` naming the first problem found.

    Checks the structure only (names, count, dtypes, 4-D, prompts are strings); the reward checks the
    videos' shapes and value ranges as it does for local calls.
    """
    metadata = _metadata(body)
    try:
        prompts = json.loads(metadata["prompts"])
        value_range = tuple(float(v) for v in json.loads(metadata.get("value_range", "[0, 1]")))
    except KeyError:
        raise ProtocolError("the metadata has no 'prompts' entry (a JSON list of strings).") from None
    except (TypeError, ValueError):
        raise ProtocolError("the metadata's 'prompts' or 'value_range' is not valid JSON of the expected type.") from None
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ProtocolError("'prompts' must be a JSON list of strings.")
    if len(value_range) != 2:
        raise ProtocolError(f"'value_range' must be a pair [low, high], got {list(value_range)}.")
    try:
        tensors = _load_tensors(body)
    except Exception as error:  # safetensors raises its own error type for every malformed file
        raise ProtocolError(f"the body is not a readable safetensors file: {error}") from None
    expected = [f"video.{i}" for i in range(len(prompts))]
    if sorted(tensors) != sorted(expected):
        raise ProtocolError(f"expected tensors {expected[:3]}{'...' if len(expected) > 3 else ''} "
                            f"(one per prompt, {len(prompts)} prompts), got {sorted(tensors)[:5]}.")
    if not prompts:
        raise ProtocolError("the request holds no videos.")
    videos = [tensors[name] for name in expected]
    for name, video in zip(expected, videos):
        if video.dtype not in ALLOWED_DTYPES:
            raise ProtocolError(f"{name} has dtype {video.dtype}; expected uint8 or a float dtype.")
        if video.ndim != 4:
            raise ProtocolError(f"{name} must be a 4-D tensor [T, C, H, W], got shape {tuple(video.shape)}.")
    return ScoreRequest(videos=videos, prompts=prompts, value_range=value_range)  # type: ignore[arg-type]


def encode_response(scores: torch.Tensor, rewards: torch.Tensor) -> dict:
    """The JSON answer for scores float32 [B, K] and rewards float32 [B]."""
    return {"scores": scores.float().cpu().tolist(), "rewards": rewards.float().cpu().tolist()}


def decode_response(payload: dict, count: int, num_aspects: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scores float32 [count, num_aspects] and rewards float32 [count] from a JSON answer."""
    scores = torch.tensor(payload["scores"], dtype=torch.float32)
    rewards = torch.tensor(payload["rewards"], dtype=torch.float32)
    if scores.shape != (count, num_aspects) or rewards.shape != (count,):
        raise ProtocolError(f"expected scores [{count}, {num_aspects}] and rewards [{count}], "
                            f"got {list(scores.shape)} and {list(rewards.shape)}.")
    return scores, rewards
