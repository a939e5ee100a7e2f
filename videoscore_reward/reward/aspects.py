"""Aspect names, aspect weights and score normalization.

`ASPECTS` and `SCORE_RANGE` are VideoScore v1/v1.1's; every function here takes the model's own
aspects and scale, so other model families (VideoScore2: three aspects on 1-5) share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Literal, Union

import torch

ASPECTS: tuple[str, ...] = (
    "visual quality",
    "temporal consistency",
    "dynamic degree",
    "text-to-video alignment",
    "factual consistency",
)
"""VideoScore v1/v1.1's aspect names, in the order of the model's five outputs."""

SCORE_RANGE: tuple[float, float] = (1.0, 4.0)
"""VideoScore v1/v1.1's scale: 1.0 means bad, 4.0 perfect / like a real video."""

Normalize = Literal["raw", "unit"]
Weights = Union[Mapping[str, float], Sequence[float], None]


def parse_weights(weights: Weights, aspects: Sequence[str] = ASPECTS) -> torch.Tensor:
    """Turn aspect weights into a float32 vector [A] in the order of `aspects`.

    `None` weighs every aspect equally. A mapping names aspects (missing ones weigh 0); a
    sequence gives one number per aspect, in order. Weights must be finite and non-negative with a
    positive sum, because the reward is their weighted mean; they are checked as the float32 values
    the reward computes with, so 1e39 (inf in float32), 1e-46 (0) or three times 2e38 (an infinite
    sum) are refused rather than turning every reward into NaN.
    """
    aspects = tuple(aspects)
    if weights is None:
        return torch.ones(len(aspects))
    if isinstance(weights, Mapping):
        unknown = [name for name in weights if name not in aspects]
        if unknown:
            raise ValueError(f"Unknown aspect(s) in weights: {unknown}. Expected names from {list(aspects)}.")
        values = [weights.get(name, 0.0) for name in aspects]
    elif isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(
            f"weights must be a dict by aspect name or a sequence of {len(aspects)} numbers, "
            f"got {type(weights).__name__}."
        )
    else:
        if len(weights) != len(aspects):
            raise ValueError(
                f"weights as a sequence needs {len(aspects)} numbers in the order {list(aspects)}, got {len(weights)}."
            )
        values = list(weights)
    for name, value in zip(aspects, values):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"The weight of {name!r} must be a number, got {value!r}.")
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float32)
    shown = dict(zip(aspects, (float(v) for v in values)))
    if not bool(torch.isfinite(tensor).all()) or bool((tensor < 0).any()):
        raise ValueError(f"Aspect weights must be finite float32 numbers >= 0 (at most ~3.4e38), got {shown}.")
    total = tensor.sum()
    if not bool(torch.isfinite(total)):
        raise ValueError(f"Aspect weights sum to more than float32 can hold (~3.4e38): {shown}.")
    if bool(total <= 0):
        raise ValueError(
            f"At least one aspect weight must be > 0 in float32 (values below ~1e-45 are 0), got {shown}."
        )
    return tensor


def check_normalize(normalize: str, score_range: tuple[float, float] = SCORE_RANGE) -> Normalize:
    """`normalize` itself, once checked to be "raw" or "unit"."""
    if normalize not in ("raw", "unit"):
        low, high = score_range
        raise ValueError(
            f"normalize must be 'raw' ({low:g}-{high:g} scale) or 'unit' ((s-{low:g})/{high - low:g} in [0, 1]), "
            f"got {normalize!r}."
        )
    return normalize  # type: ignore[return-value]


def weighted_reward(
    scores: torch.Tensor,
    weights: torch.Tensor,
    normalize: Normalize,
    score_range: tuple[float, float] = SCORE_RANGE,
) -> torch.Tensor:
    """The scalar reward of each video.

    reward = sum_i w_i * n(s_i) / sum_i w_i, with n(s) = s for "raw" (the model's own scale) and
    n(s) = (s - low) / (high - low) for "unit" (low -> 0, high -> 1), where `score_range` = (low, high).

    scores: float [B, A] on the model's scale; weights: float32 [A]. Returns float32 [B].
    """
    values = scores.float()
    if normalize == "unit":
        low, high = score_range
        values = (values - low) / (high - low)
    weights = weights.to(values.device)
    return values @ weights / weights.sum()
