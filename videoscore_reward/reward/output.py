"""What a reward call returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .aspects import ASPECTS


@dataclass
class RewardOutput:
    """Scores and rewards of a batch, in input order.

    scores: float32 [B, 5], the aspects in `ASPECTS` order on VideoScore's 1-4 scale (not normalized).
    rewards: float32 [B], the weighted reward (see `VideoScoreReward` for the formula).
    Both stay on the reward's device.
    """

    scores: torch.Tensor
    rewards: torch.Tensor

    def __len__(self) -> int:
        return self.scores.shape[0]

    def to_dicts(self) -> list[dict[str, float]]:
        """One dict per video: the five aspects by name, and "reward"."""
        scores = self.scores.tolist()
        rewards = self.rewards.tolist()
        return [{**dict(zip(ASPECTS, row)), "reward": reward} for row, reward in zip(scores, rewards)]

    def to_pandas(self):
        """A DataFrame with one row per video and the columns of `to_dicts`."""
        import pandas as pd

        return pd.DataFrame(self.to_dicts(), columns=[*ASPECTS, "reward"])

    @classmethod
    def concat(cls, outputs: list["RewardOutput"]) -> "RewardOutput":
        return cls(
            scores=torch.cat([o.scores for o in outputs]),
            rewards=torch.cat([o.rewards for o in outputs]),
        )
