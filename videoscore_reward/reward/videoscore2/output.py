"""What a VideoScore2 call returns: the shared `RewardOutput` plus the score distributions."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..output import RewardOutput


@dataclass
class VideoScore2Output(RewardOutput):
    """`RewardOutput` (scores float32 [B, 3] on 1-5, rewards float32 [B]) with, per video and aspect:

    digit_logits: forced mode only, float32 [B, 3, 5], the model's logits of "1".."5" at each score position.
    probs: float32 [B, 3, 5], the distribution over the score digits "1".."5" at the score position
      (softmax of the five digit logits; official mode: of its processed, temperature/top-k scores).
    integer_scores: int64 [B, 3], the most probable digit (ties: the lower); official mode: the parsed digit.
    entropy: float32 [B, 3], entropy of `probs` in nats: 0 = certain, log(5) = 1.61 = no preference.
    texts: official mode only, the generated answers.
    errors: official mode only, None or why that video has no scores (its scores and reward are NaN).
    """

    digit_logits: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    integer_scores: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    texts: list[str] | None = None
    errors: list[str | None] | None = field(default=None)

    @classmethod
    def concat(cls, outputs: list["VideoScore2Output"]) -> "VideoScore2Output":
        base = RewardOutput.concat(outputs)

        def cat(name: str):
            values = [getattr(o, name) for o in outputs]
            return None if any(v is None for v in values) else torch.cat(values)

        def join(name: str):
            values = [getattr(o, name) for o in outputs]
            return None if any(v is None for v in values) else [x for v in values for x in v]

        return cls(
            scores=base.scores, rewards=base.rewards, aspects=base.aspects,
            digit_logits=cat("digit_logits"), probs=cat("probs"), integer_scores=cat("integer_scores"),
            entropy=cat("entropy"),
            texts=join("texts"), errors=join("errors"),
        )
