"""`BaseReward`: what every reward of this package is, whatever model scores the videos.

A reward is callable on `(videos, prompts)` and returns a `RewardOutput`; it names its aspects and their
score scale, folds the aspect scores into one reward with its weights and normalization, scores in the
background with `submit()`, and becomes a DDPO-style reward function with `as_reward_fn()`. The CLI, the
app, the diffusers helpers, the trainers and the server work on this interface, so a VideoScore v1
model, a VideoScore2 model and a remote server are interchangeable.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import torch

from .aspects import Normalize, Weights, check_normalize, parse_weights, weighted_reward
from .output import RewardOutput

if TYPE_CHECKING:
    from .reward_fn import VideoScoreRewardFn
    from .video import Sampling


def default_device() -> torch.device:
    """Where a reward loads by default: accelerate's device for this process (under `accelerate launch`,
    the GPU that belongs to it; the GPU when there is one; else the CPU)."""
    from accelerate import PartialState

    return PartialState().device


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    """`value` itself, once checked to be an int >= `minimum` (bools and floats like 2.5 are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return value


class BaseReward(ABC):
    """The interface of every reward: videos and prompts in, per-aspect scores and a scalar reward out.

    Subclasses set `aspects` and `score_range` (their model's facts) and implement `__call__`.
    The reward of a video is the weighted mean of its normalized aspect scores:
    ``reward = sum_i w_i * n(s_i) / sum_i w_i`` with ``n(s) = s`` for ``normalize="raw"`` and
    ``n(s) = (s - low) / (high - low)`` for ``normalize="unit"`` ([0, 1]), where
    ``score_range = (low, high)``. `weights` is a dict by aspect name (aspects left out weigh 0) or one
    number per aspect in `aspects` order; the default weighs all aspects equally.
    """

    aspects: tuple[str, ...]
    """Aspect names, in the order of the score columns."""
    score_range: tuple[float, float]
    """(worst, best) score of one aspect on the model's scale."""
    num_frames: int | None
    """Frames the model sees per video (None: decided per video, e.g. by fps)."""

    def __init__(self, *, weights: Weights = None, normalize: Normalize = "raw", batch_size: int = 8):
        self.weights = parse_weights(weights, self.aspects)
        self.normalize = check_normalize(normalize, self.score_range)
        self.batch_size = check_count("batch_size", batch_size)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def sampling(self) -> "Sampling":
        """Which frames of a file to decode for this model: `load_video(path, reward.sampling)`. The
        frame count `num_frames` here; a `FrameSampler` for models that sample by time."""
        return self.num_frames

    @abstractmethod
    def __call__(self, videos, prompts: str | Sequence[str], **kwargs) -> RewardOutput:
        """Score a batch of videos against their prompts; see the subclass for the accepted inputs."""

    def combine(self, scores: torch.Tensor) -> torch.Tensor:
        """The weighted reward of aspect scores: float [B, A] on the model's scale -> float32 [B]."""
        return weighted_reward(scores, self.weights, self.normalize, self.score_range)

    def output(self, scores: torch.Tensor) -> RewardOutput:
        """A `RewardOutput` of aspect scores float [B, A], with this reward's weighted rewards."""
        scores = scores.float()
        return RewardOutput(scores=scores, rewards=self.combine(scores), aspects=self.aspects)

    @staticmethod
    def check_prompts(prompts: str | Sequence[str], count: int) -> list[str]:
        """One prompt per video: a single string is repeated `count` times; a list must have `count`."""
        if isinstance(prompts, str):
            return [prompts] * count
        if not isinstance(prompts, Sequence):
            raise TypeError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}.")
        prompts = list(prompts)
        if len(prompts) != count:
            raise ValueError(
                f"Got {len(prompts)} prompts for {count} videos: expected one prompt per video (or one string for all)."
            )
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise TypeError(f"prompts[{i}] must be a string, got {type(prompt).__name__}.")
        return prompts

    def submit(self, videos, prompts: str | Sequence[str], **kwargs) -> Future:
        """Score in the background: returns a `Future[RewardOutput]` at once, so the next batch can be
        sampled while this one is scored. Arguments as for a call. One worker thread per reward
        (created on first use) scores submissions in order; an error surfaces at `.result()`.
        """
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._submit_workers, thread_name_prefix="videoscore-reward")
        return self._executor.submit(self, videos, prompts, **kwargs)

    @property
    def _submit_workers(self) -> int:
        # One: a local model scores one submission at a time; a remote reward lets several be in flight.
        return 1

    def as_reward_fn(
        self, *, value_range: tuple[float, float] = (0.0, 1.0), asynchronous: bool = False
    ) -> "VideoScoreRewardFn":
        """This reward as a DDPO-style `reward_fn(videos, prompts, metadata) -> (rewards [B], info)`; see
        `VideoScoreRewardFn`."""
        from .reward_fn import VideoScoreRewardFn

        return VideoScoreRewardFn(self, value_range=value_range, asynchronous=asynchronous)

    def __getstate__(self) -> dict:
        # Picklable (for trainers that hand reward functions to worker processes): the worker thread
        # and its lock stay behind and are made anew on first use.
        state = self.__dict__.copy()
        state["_executor"], state["_executor_lock"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._executor_lock = threading.Lock()

    def weights_by_aspect(self) -> dict[str, float]:
        """The aspect weights as {aspect: weight}."""
        return dict(zip(self.aspects, self.weights.tolist()))
