"""Reward functions in the signature of the DDPO family (TRL's DDPOTrainer up to trl 0.23, ddpo-pytorch,
Flow-GRPO):

    reward_fn(videos, prompts, metadata) -> (rewards, info)

videos: float [B, T, C, H, W] in [0, 1] (images [B, C, H, W] are one-frame videos); prompts: B strings;
metadata: B dicts (or anything, unused here); rewards: float32 [B]; info: a dict of per-sample tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

from ...reward.aspects import ASPECTS
from ...reward.output import RewardOutput

if TYPE_CHECKING:
    from ...reward.scorer import VideoScoreReward

RewardFn = Callable[[torch.Tensor, Sequence[str], Any], tuple[torch.Tensor, dict[str, Any]]]
"""`reward_fn(videos, prompts, metadata) -> (rewards float [B], info dict)`."""


def _as_videos(videos: torch.Tensor) -> torch.Tensor:
    if not isinstance(videos, torch.Tensor) or videos.ndim not in (4, 5):
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"videos must be a float tensor [B, T, C, H, W] (or images [B, C, H, W]), got {shape}.")
    return videos.unsqueeze(1) if videos.ndim == 4 else videos


class VideoScoreRewardFn:
    """`VideoScoreReward` as a DDPO-style reward function (build it with `reward.as_reward_fn()`).

    Call: `fn(videos, prompts, metadata=None) -> (rewards, info)`.
    videos: float [B, T, C, H, W] with values in `value_range` (default [0, 1]); images [B, C, H, W]
    are scored as one-frame videos. prompts: B strings (a list or a tuple). metadata is ignored.
    rewards: float32 [B], the weighted reward (`reward.weights`, `reward.normalize`).
    info: {"scores": float32 [B, 5] on the 1-4 scale in `ASPECTS` order, and one float32 [B] entry per
    aspect name}. With `asynchronous=True` the call returns `(Future[rewards], Future[info])`, what TRL's
    `async_reward_computation` expects, and scores on the reward's worker thread (`reward.submit`).
    """

    __name__ = "videoscore"

    def __init__(self, reward: "VideoScoreReward", *, value_range: tuple[float, float] = (0.0, 1.0),
                 asynchronous: bool = False):
        self.reward = reward
        self.value_range = value_range
        self.asynchronous = asynchronous

    @property
    def weights(self) -> torch.Tensor:
        """The aspect weights, float32 [5] in `ASPECTS` order."""
        return self.reward.weights

    @property
    def normalize(self) -> str:
        return self.reward.normalize

    @staticmethod
    def info(output: RewardOutput) -> dict[str, torch.Tensor]:
        """The per-aspect info of a `RewardOutput`: "scores" [B, 5] and each aspect's [B] column."""
        return {"scores": output.scores, **{name: output.scores[:, i] for i, name in enumerate(ASPECTS)}}

    def __call__(self, videos: torch.Tensor, prompts: Sequence[str], metadata: Any = None):
        videos = _as_videos(videos)
        if not self.asynchronous:
            output = self.reward(videos, list(prompts), value_range=self.value_range)
            return output.rewards, self.info(output)
        scored = self.reward.submit(videos, list(prompts), value_range=self.value_range)
        return _then(scored, lambda output: output.rewards), _then(scored, self.info)


def _then(future: Future, fn: Callable) -> Future:
    """A future of `fn(future.result())`; an exception of `future` is passed on."""
    derived: Future = Future()

    def done(source: Future) -> None:
        try:
            derived.set_result(fn(source.result()))
        except BaseException as error:  # noqa: BLE001 - handed to whoever calls .result()
            derived.set_exception(error)

    future.add_done_callback(done)
    return derived


def _name(fn: Callable, taken: set[str]) -> str:
    base = getattr(fn, "__name__", type(fn).__name__)
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def multi_reward(fns: Mapping[Callable, float]) -> RewardFn:
    """Combine reward functions of the DDPO signature: `rewards = sum_j w_j * r_j`.

    fns: {reward_fn: weight}. Each function's rewards (a tensor, array or list of B numbers) become
    float32 on the first function's device. info holds, for a function named `name` (its `__name__`,
    "videoscore" for `as_reward_fn()`; repeated names get "_2", "_3"), its unweighted rewards as
    "name/reward" and each entry of its info as "name/key".
    """
    if not fns:
        raise ValueError("multi_reward needs at least one {reward_fn: weight} entry.")
    named = []
    for fn, weight in fns.items():
        if not callable(fn):
            raise TypeError(f"multi_reward keys must be reward functions, got {type(fn).__name__}.")
        if not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"The weight of {getattr(fn, '__name__', fn)!r} must be a finite number, got {weight!r}.")
        named.append((_name(fn, {n for n, _, _ in named}), fn, float(weight)))

    def combined(videos: torch.Tensor, prompts: Sequence[str], metadata: Any = None):
        total, info = None, {}
        for name, fn, weight in named:
            rewards, fn_info = fn(videos, prompts, metadata)
            device = total.device if total is not None else None
            rewards = torch.as_tensor(rewards, dtype=torch.float32, device=device)
            if rewards.shape != (len(prompts),):
                raise ValueError(f"Reward function {name!r} returned rewards of shape {tuple(rewards.shape)}, "
                                 f"expected ({len(prompts)},), one per prompt.")
            total = weight * rewards if total is None else total + weight * rewards
            info[f"{name}/reward"] = rewards
            info.update({f"{name}/{key}": value for key, value in (fn_info or {}).items()})
        return total, info

    combined.__name__ = "multi_reward"
    return combined

