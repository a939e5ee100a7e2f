"""Per-step policy objectives shared by the trainers: PPO clipping, reward-weighted regression, and the
closed-form KL between two Gaussian steps of the same standard deviation."""

from __future__ import annotations

import math

import torch


def ppo_clipped_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float,
    adv_clip_max: float = math.inf,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO clipped objective for one denoising step (DDPO-IS, Flow-GRPO).

    With A = clip(advantages, -adv_clip_max, adv_clip_max) and ratio = exp(log_probs - old_log_probs):
    loss = mean(max(-A * ratio, -A * clip(ratio, 1 - clip_range, 1 + clip_range))).
    All inputs float [B]. Returns the loss and {"approx_kl": mean((log_probs - old_log_probs)^2) / 2,
    "clipfrac": fraction of |ratio - 1| > clip_range}.
    """
    advantages = advantages.clamp(-adv_clip_max, adv_clip_max)
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {"approx_kl": 0.5 * ((log_probs - old_log_probs) ** 2).mean(),
                 "clipfrac": ((ratio - 1).abs() > clip_range).float().mean()}
    return loss, stats


def rwr_weights(advantages: torch.Tensor, temperature: float) -> torch.Tensor:
    """Reward-weighted regression weights: N * softmax(advantages / temperature), float [N] averaging 1."""
    if temperature <= 0:
        raise ValueError(f"rwr_temperature must be > 0, got {temperature}.")
    return torch.softmax(advantages.float() / temperature, dim=0) * advantages.numel()


def rwr_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Reward-weighted regression for one denoising step: -mean(weights * log_probs); weights from `rwr_weights`."""
    return -(weights * log_probs).mean()


def gaussian_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
    """KL(N(mean, std^2 I) || N(ref_mean, std^2 I)) per element, averaged over all but the batch dimension.

    With equal standard deviations the KL is |mean - ref_mean|^2 / (2 std^2): no sampling needed. The average
    (not the sum) over elements matches the averaged log-probabilities the trainers use. mean, ref_mean:
    [B, ...]; std: a number or a tensor broadcastable to them. Returns float32 [B], >= 0.
    """
    kl = (mean.float() - ref_mean.float()) ** 2 / (2 * torch.as_tensor(std, dtype=torch.float32) ** 2)
    return kl.mean(dim=tuple(range(1, kl.ndim)))
