"""Any reward as a reward function in the signature of the DDPO family (TRL's DDPOTrainer up to trl
0.23, ddpo-pytorch, the project's own DDPO and GRPO trainers):

    reward_fn(videos, prompts, metadata) -> (rewards, info)

videos: float [B, T, C, H, W] in [0, 1] (images [B, C, H, W] are one-frame videos); prompts: B strings;
metadata: B dicts (or anything, unused here); rewards: float32 [B]; info: a dict of per-sample tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

from .output import RewardOutput

if TYPE_CHECKING:
    from .base import BaseReward

RewardFn = Callable[[torch.Tensor, Sequence[str], Any], tuple[torch.Tensor, dict[str, Any]]]
"""`reward_fn(videos, prompts, metadata) -> (rewards float [B], info dict)`."""


def _as_videos(videos: torch.Tensor) -> torch.Tensor:
    if not isinstance(videos, torch.Tensor) or videos.ndim not in (4, 5):
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"videos must be a float tensor [B, T, C, H, W] (or images [B, C, H, W]), got {shape}.")
    return videos.unsqueeze(1) if videos.ndim == 4 else videos


class VideoScoreRewardFn:
    """A reward as a DDPO-style reward function (build it with `reward.as_reward_fn()`).

    Call: `fn(videos, prompts, metadata=None) -> (rewards, info)`.
    videos: float [B, T, C, H, W] with values in `value_range` (default [0, 1]); images [B, C, H, W]
    are scored as one-frame videos. prompts: B strings (a list or a tuple). metadata is ignored.
    rewards: float32 [B], the weighted reward (`reward.weights`, `reward.normalize`).
    info: {"scores": float32 [B, A] on the model's scale in `reward.aspects` order, and one float32 [B]
    entry per aspect name}. With `asynchronous=True` the call returns `(Future[rewards], Future[info])`,
    what TRL's `async_reward_computation` expects, and scores on the reward's worker thread
    (`reward.submit`).
    """

    __name__ = "videoscore"

    def __init__(self, reward: "BaseReward", *, value_range: tuple[float, float] = (0.0, 1.0),
                 asynchronous: bool = False):
        self.reward = reward
        self.value_range = value_range
        self.asynchronous = asynchronous

    @property
    def aspects(self) -> tuple[str, ...]:
        """The reward's aspect names, in the order of `info["scores"]`'s columns."""
        return self.reward.aspects

    @property
    def weights(self) -> torch.Tensor:
        """The aspect weights, float32 [A] in `aspects` order."""
        return self.reward.weights

    @staticmethod
    def info(output: RewardOutput) -> dict[str, torch.Tensor]:
        """The per-aspect info of a `RewardOutput`: "scores" [B, A] and each aspect's [B] column."""
        return {"scores": output.scores, **{name: output.scores[:, i] for i, name in enumerate(output.aspects)}}

    def __call__(self, videos: torch.Tensor, prompts: Sequence[str], metadata: Any = None):
        videos = _as_videos(videos)
        if not self.asynchronous:
            output = self.reward(videos, list(prompts), value_range=self.value_range)
            return output.rewards, self.info(output)
        scored = self.reward.submit(videos, list(prompts), value_range=self.value_range)
        return then(scored, lambda output: output.rewards), then(scored, self.info)


def then(future: Future, fn: Callable) -> Future:
    """A future of `fn(future.result())`; an exception of `future` is passed on."""
    derived: Future = Future()

    def done(source: Future) -> None:
        try:
            derived.set_result(fn(source.result()))
        except BaseException as error:  # noqa: BLE001 - handed to whoever calls .result()
            derived.set_exception(error)

    future.add_done_callback(done)
    return derived
