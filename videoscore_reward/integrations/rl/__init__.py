"""RL fine-tuning with VideoScore: DDPO-style reward functions, advantages, a DDPO / RWR trainer for
AnimateDiff and a GRPO trainer for flow-matching video pipelines (Wan 2.1 / 2.2), both with LoRA.

The reward functions, advantages, losses and configs need only torch and numpy; the trainers and samplers
(`DDPOTrainer`, `GRPOTrainer`, `sample_with_logprobs`, ...) need the `train` extra (diffusers, peft) and are
imported on first use.
"""

from .advantages import PerPromptStatTracker, group_advantages, per_aspect_advantages
from .config import DDPOConfig, GRPOConfig
from .flow_sde import flow_sde_step_with_logprob
from .losses import gaussian_kl, ppo_clipped_loss, rwr_loss, rwr_weights
from .rewards import RewardFn, VideoScoreRewardFn, multi_reward
from .trajectories import Trajectories

_LAZY = {
    "DDPOTrainer": "ddpo",
    "ddim_step_std": "animatediff",
    "ddim_step_with_logprob": "animatediff",
    "sample_with_logprobs": "animatediff",
    "GRPOTrainer": "grpo",
    "sample_wan_with_logprobs": "wan",
}

__all__ = ["DDPOConfig", "GRPOConfig", "PerPromptStatTracker", "RewardFn", "Trajectories", "VideoScoreRewardFn",
           "flow_sde_step_with_logprob", "gaussian_kl", "group_advantages", "multi_reward", "per_aspect_advantages",
           "ppo_clipped_loss", "rwr_loss", "rwr_weights", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
