"""RL fine-tuning with VideoScore: DDPO-style reward functions, advantages, and a DDPO / RWR trainer for
AnimateDiff with LoRA.

The reward functions and advantages need only torch and numpy; the trainer (`DDPOConfig`, `DDPOTrainer`,
`sample_with_logprobs`, ...) needs the `train` extra (diffusers, peft) and is imported on first use.
"""

from .advantages import PerPromptStatTracker, per_aspect_advantages
from .rewards import RewardFn, VideoScoreRewardFn, multi_reward

_TRAINER_NAMES = (
    "DDPOConfig",
    "DDPOTrainer",
    "Trajectories",
    "ddim_step_std",
    "ddim_step_with_logprob",
    "ppo_clipped_loss",
    "rwr_loss",
    "rwr_weights",
    "sample_with_logprobs",
)

__all__ = ["PerPromptStatTracker", "RewardFn", "VideoScoreRewardFn", "multi_reward", "per_aspect_advantages",
           *_TRAINER_NAMES]


def __getattr__(name: str):
    if name in _TRAINER_NAMES:
        from . import ddpo

        return getattr(ddpo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
