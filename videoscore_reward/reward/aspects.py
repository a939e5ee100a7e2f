"""The five VideoScore aspects, aspect weights and score normalization."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, Union

import torch

ASPECTS: tuple[str, ...] = (
    "visual quality",
    "temporal consistency",
    "dynamic degree",
    "text-to-video alignment",
    "factual consistency",
)
"""Aspect names in the order of the model's five outputs."""

SCORE_RANGE: tuple[float, float] = (1.0, 4.0)
"""VideoScore's scale: 1.0 means bad, 4.0 perfect / like a real video."""

Normalize = Literal["raw", "unit"]
Weights = Union[Mapping[str, float], Sequence[float], None]


def parse_weights(weights: Weights) -> torch.Tensor:
    """Turn aspect weights into a float32 vector [5] in `ASPECTS` order.

    `None` weighs every aspect equally. A mapping names aspects (missing ones weigh 0); a
    sequence gives all five in `ASPECTS` order. Weights must be finite and non-negative with a
    positive sum, because the reward is their weighted mean.
    """
    if weights is None:
        return torch.ones(len(ASPECTS))
    if isinstance(weights, Mapping):
        unknown = [name for name in weights if name not in ASPECTS]
        if unknown:
            raise ValueError(
                f"Unknown aspect(s) in weights: {unknown}. Expected names from {list(ASPECTS)}."
            )
        values = [float(weights.get(name, 0.0)) for name in ASPECTS]
    elif isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(
            f"weights must be a dict by aspect name or a sequence of {len(ASPECTS)} numbers, "
            f"got {type(weights).__name__}."
        )
    else:
        if len(weights) != len(ASPECTS):
            raise ValueError(
                f"weights as a sequence needs {len(ASPECTS)} numbers in the order {list(ASPECTS)}, "
                f"got {len(weights)}."
            )
        values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"Aspect weights must be finite and >= 0, got {dict(zip(ASPECTS, values))}.")
    if sum(values) <= 0:
        raise ValueError(f"At least one aspect weight must be > 0, got {dict(zip(ASPECTS, values))}.")
    return torch.tensor(values, dtype=torch.float32)


def check_normalize(normalize: str) -> Normalize:
    if normalize not in ("raw", "unit"):
        raise ValueError(f"normalize must be 'raw' (1-4 scale) or 'unit' ((s-1)/3 in [0, 1]), got {normalize!r}.")
    return normalize  # type: ignore[return-value]


def weighted_reward(scores: torch.Tensor, weights: torch.Tensor, normalize: Normalize) -> torch.Tensor:
    """The scalar reward of each video.

    reward = sum_i w_i * n(s_i) / sum_i w_i, with n(s) = s for "raw" (VideoScore's 1-4 scale)
    and n(s) = (s - 1) / 3 for "unit" (1 -> 0, 4 -> 1).

    scores: float [B, 5] on the 1-4 scale. Returns float32 [B].
    """
    values = scores.float()
    if normalize == "unit":
        values = (values - SCORE_RANGE[0]) / (SCORE_RANGE[1] - SCORE_RANGE[0])
    weights = weights.to(values.device)
    return values @ weights / weights.sum()
