"""Video files to scores, the one way the CLI and the app both go.

`read_frames` turns a path into frames, or into a problem the caller reports per file (never a
warning: decode threads cannot catch warnings safely). `score_batch` scores frames in one reward
call and, if that call fails, one video at a time, so that one bad video does not take its
batch-mates down with it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from .reward import BaseReward, RewardOutput
from .reward.video import Sampling, VideoDamage, read_video

logger = logging.getLogger(__name__)


@dataclass
class VideoFrames:
    """One video file read for scoring: `frames` uint8 [T, 3, H, W] (values 0-255), or None with the
    `error` that stopped the read. A damaged file still has frames, and `damage` says what is wrong."""

    frames: torch.Tensor | None
    error: Exception | None = None
    damage: VideoDamage | None = None


def read_frames(path: str | os.PathLike, num_frames: Sampling) -> VideoFrames:
    """Decode the frames the reward samples from `path` (see `load_video`). Never raises for a bad
    file: the exception comes back in `error`."""
    try:
        frames, damage = read_video(path, num_frames)
    except Exception as error:  # a bad file must not stop a batch job
        return VideoFrames(None, error=error)
    return VideoFrames(frames, damage=damage)


def score_batch(reward: BaseReward, videos: list[torch.Tensor], prompts: list[str]) -> list[RewardOutput | Exception]:
    """Score `videos` (uint8 [T, 3, H, W] each) against `prompts`: for each video a one-video
    `RewardOutput`, or the exception that scoring it raised.

    One reward call for the batch (`reward.batch_size` videos per model call); if it fails, each
    video is scored on its own, so only the videos that fail alone get an exception. A video the
    reward reports in its output's `errors` gets a ValueError with that message.
    """
    if not videos:
        return []
    try:
        return _per_video(reward(videos, prompts))
    except Exception:
        logger.info("Scoring a batch of %d video(s) failed; scoring them one by one.", len(videos), exc_info=True)
    results: list[RewardOutput | Exception] = []
    for video, prompt in zip(videos, prompts):
        try:
            results.extend(_per_video(reward([video], [prompt])))
        except Exception as error:
            results.append(error)
    return results


def _per_video(out: RewardOutput) -> list[RewardOutput | Exception]:
    # A reward may fail single videos without raising (VideoScore2's official mode: no score in the answer).
    errors = getattr(out, "errors", None) or [None] * len(out)
    return [ValueError(error) if error else RewardOutput(out.scores[i : i + 1], out.rewards[i : i + 1], out.aspects)
            for i, error in enumerate(errors)]


def describe(error: BaseException) -> str:
    """An exception as one line of a results table: "TypeName: message"."""
    return f"{type(error).__name__}: {error}"
