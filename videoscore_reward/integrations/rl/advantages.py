"""Advantages from rewards: a per-prompt stat tracker, per-aspect normalization before weighting, and GRPO's
within-group normalization.

Per-prompt normalization (DDPO): the advantage of sample i with prompt p is

    A_i = (r_i - mu_p) / (sigma_p + eps)

where mu_p, sigma_p are the mean and (population) standard deviation of the last `buffer_size` rewards
seen for p, this batch included, once p has at least `min_count` of them; before that, of the whole
current batch. Prompts differ in how hard they are; this compares a sample with its own prompt's others.

Per-aspect normalization: with aspect scores s_ik (k = 1..5) and weights w_k, every aspect is normalized
on its own within the prompt's group, then weighted:

    A_i = sum_k w_k * (s_ik - mu_pk) / (sigma_pk + eps) / sum_k w_k

A plain weighted sum of raw scores lets the aspect that varies most (often the easy one) decide the sign
of the advantage; normalizing first gives every aspect the influence its weight says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ...reward.aspects import ASPECTS, parse_weights


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def _aspect_weights(weights, num_aspects: int, aspects: Sequence[str]) -> np.ndarray:
    """float64 [K]: a dict by aspect name (others weigh 0) read by the reward core's `parse_weights`
    against `aspects`, the names of the K score columns; or K numbers >= 0 with a positive sum."""
    if isinstance(weights, Mapping):
        if len(aspects) != num_aspects:
            raise ValueError(f"weights by name need the names of the {num_aspects} score columns: pass "
                             f"aspects=reward.aspects (got {len(aspects)} names: {list(aspects)}).")
        return parse_weights(weights, aspects).double().numpy()
    values = _as_array(weights)
    if values.shape != (num_aspects,):
        raise ValueError(f"scores of {num_aspects} aspects need {num_aspects} weights (or a dict by aspect name), "
                         f"got weights of shape {values.shape}.")
    if (values < 0).any() or values.sum() <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {values.tolist()}.")
    return values


class PerPromptStatTracker:
    """Normalize rewards per prompt with a rolling buffer (formula in the module docstring).

    buffer_size: rewards kept per prompt (None keeps all). min_count: rewards a prompt needs before its own
    statistics replace the batch's; must be <= buffer_size. eps: added to the standard deviation.
    Rewards are [B] (one reward) or [B, K] (K columns normalized independently, e.g. the five aspects).
    """

    def __init__(self, buffer_size: int | None = 16, min_count: int = 16, eps: float = 1e-6):
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}.")
        if buffer_size is not None and buffer_size < min_count:
            raise ValueError(f"buffer_size ({buffer_size}) must be >= min_count ({min_count}), or a prompt would never "
                             f"reach min_count and always use batch statistics.")
        self.buffer_size = buffer_size
        self.min_count = min_count
        self.eps = eps
        self._buffers: dict[str, deque] = {}

    def update(self, prompts: Sequence[str], rewards) -> np.ndarray:
        """Add a batch and return its advantages, float64 [B] or [B, K] like `rewards`."""
        rewards = _as_array(rewards)
        prompts = list(prompts)
        if rewards.ndim not in (1, 2) or rewards.shape[0] != len(prompts):
            raise ValueError(f"rewards must be [B] or [B, K] with B = {len(prompts)} prompts, got shape {rewards.shape}.")
        advantages = np.empty_like(rewards)
        batch_mean, batch_std = rewards.mean(axis=0), rewards.std(axis=0)
        for prompt in dict.fromkeys(prompts):
            rows = np.array([p == prompt for p in prompts])
            buffer = self._buffers.setdefault(prompt, deque(maxlen=self.buffer_size))
            buffer.extend(rewards[rows])
            if len(buffer) >= self.min_count:
                history = np.stack(buffer)
                mean, std = history.mean(axis=0), history.std(axis=0)
            else:
                mean, std = batch_mean, batch_std
            advantages[rows] = (rewards[rows] - mean) / (std + self.eps)
        return advantages

    def stats(self) -> dict[str, dict[str, float | int]]:
        """Per prompt: how many rewards are buffered, and their mean and std (of the first column)."""
        out = {}
        for prompt, buffer in self._buffers.items():
            history = np.stack(buffer).reshape(len(buffer), -1)[:, 0]
            out[prompt] = {"count": len(buffer), "mean": float(history.mean()), "std": float(history.std())}
        return out

    def clear(self) -> None:
        self._buffers.clear()

    def state_dict(self) -> dict:
        """The buffered rewards per prompt (what a checkpoint needs to continue a run exactly)."""
        return {"buffers": {prompt: np.stack(buffer) for prompt, buffer in self._buffers.items() if buffer}}

    def load_state_dict(self, state: dict) -> None:
        self._buffers = {prompt: deque(values, maxlen=self.buffer_size) for prompt, values in state["buffers"].items()}


def per_aspect_advantages(
    prompts: Sequence[str],
    scores,
    weights,
    tracker: PerPromptStatTracker | None = None,
    *,
    aspects: Sequence[str] = ASPECTS,
) -> np.ndarray:
    """Normalize each aspect within its prompt's group, then take the weighted mean (module docstring).

    scores: [B, K] (VideoScore: float [B, 5] on the 1-4 scale); weights: a dict by aspect name (others
    weigh 0), or K numbers >= 0 with a positive sum. aspects: the names of the K score columns, for dict
    weights (`reward.aspects`; default VideoScore's five). tracker: where the per-prompt statistics come
    from; None normalizes within this batch's prompt groups (GRPO-style; a prompt seen once gets
    advantage 0). Returns float64 [B].
    """
    scores = _as_array(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, K], got shape {scores.shape}.")
    weights = _aspect_weights(weights, scores.shape[1], aspects)
    tracker = tracker if tracker is not None else PerPromptStatTracker(buffer_size=None, min_count=1)
    return tracker.update(prompts, scores) @ weights / weights.sum()


def group_advantages(rewards, group_ids, weights=None, eps: float = 1e-4, *, aspects: Sequence[str] = ASPECTS) -> np.ndarray:
    """GRPO advantages: each reward normalised within its group, A_i = (r_i - mu_g) / (sigma_g + eps).

    rewards: [N] (one reward) or [N, K] (K aspects, e.g. VideoScore's info["scores"]); group_ids: N labels
    (the videos of one prompt sampled together). With [N, K] rewards every aspect is normalised within the
    group on its own and the K advantages are weighted afterwards, sum_k w_k A_ik / sum_k w_k (DanceGRPO's
    per-aspect advantages); `weights` (a dict by the names in `aspects`, or K numbers >= 0 with a positive
    sum) is then required. sigma_g is the
    population standard deviation; a group whose rewards are all equal gets advantage 0. Returns float64 [N].
    """
    rewards = _as_array(rewards)
    groups = np.asarray(_as_array(group_ids) if isinstance(group_ids, torch.Tensor) else group_ids)
    if rewards.ndim not in (1, 2) or groups.shape != (rewards.shape[0],):
        raise ValueError(f"rewards must be [N] or [N, K] with one group id per row; got rewards {rewards.shape} "
                         f"and group_ids {groups.shape}.")
    if rewards.ndim == 2:
        if weights is None:
            raise ValueError(f"[N, K] rewards need K = {rewards.shape[1]} weights, got None.")
        weights = _aspect_weights(weights, rewards.shape[1], aspects)
    advantages = np.zeros_like(rewards)
    for group in np.unique(groups):
        rows = groups == group
        values = rewards[rows]
        std = values.std(axis=0)
        centred = values - values.mean(axis=0)
        advantages[rows] = np.divide(centred, std + eps, out=np.zeros_like(centred), where=std > 0)
    return advantages if rewards.ndim == 1 else advantages @ weights / weights.sum()
