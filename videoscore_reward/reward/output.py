"""What a reward call returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .aspects import ASPECTS


@dataclass
class RewardOutput:
    """Scores and rewards of a batch, in input order.

    scores: float32 [B, A], one column per aspect in `aspects` order, on the model's own scale (VideoScore
    v1/v1.1: the five `ASPECTS` on 1-4), not normalized.
    rewards: float32 [B], the weighted reward (see the reward's docstring for the formula).
    aspects: the names of the score columns (the reward's `aspects`).
    Both tensors stay on the reward's device.
    """

    scores: torch.Tensor
    rewards: torch.Tensor
    aspects: tuple[str, ...] = field(default=ASPECTS)

    def __len__(self) -> int:
        return self.scores.shape[0]

    def to_dicts(self) -> list[dict[str, float]]:
        """One dict per video: each aspect by name, and "reward"."""
        scores = self.scores.tolist()
        rewards = self.rewards.tolist()
        return [{**dict(zip(self.aspects, row)), "reward": reward} for row, reward in zip(scores, rewards)]

    def to_pandas(self):
        """A DataFrame with one row per video and the columns of `to_dicts`."""
        import pandas as pd

        return pd.DataFrame(self.to_dicts(), columns=[*self.aspects, "reward"])

    @classmethod
    def concat(cls, outputs: list["RewardOutput"]) -> "RewardOutput":
        """One output of several, in order; they must share their aspects."""
        aspects = {o.aspects for o in outputs}
        if len(aspects) != 1:
            raise ValueError(f"Cannot concatenate outputs with different aspects: {sorted(aspects)}.")
        return cls(
            scores=torch.cat([o.scores for o in outputs]),
            rewards=torch.cat([o.rewards for o in outputs]),
            aspects=outputs[0].aspects,
        )
