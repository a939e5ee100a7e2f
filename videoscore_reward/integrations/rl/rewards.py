"""Combining reward functions of the DDPO family's signature:

    reward_fn(videos, prompts, metadata) -> (rewards, info)

videos: float [B, T, C, H, W] in [0, 1] (images [B, C, H, W] are one-frame videos); prompts: B strings;
metadata: B dicts (or anything); rewards: float32 [B]; info: a dict of per-sample tensors.
`VideoScoreRewardFn` (what `reward.as_reward_fn()` returns) lives in the reward core and is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ...reward.reward_fn import RewardFn, VideoScoreRewardFn

__all__ = ["RewardFn", "VideoScoreRewardFn", "multi_reward"]


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

