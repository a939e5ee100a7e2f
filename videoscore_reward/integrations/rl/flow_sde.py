"""The flow-matching ODE turned into an SDE with the same marginals, so each step has a log-probability
(Flow-GRPO, arXiv 2505.05470).

Flow matching interpolates x_sigma = (1 - sigma) x_0 + sigma * noise and the model predicts the velocity
v = noise - x_0; the ODE step is x' = x + v (sigma' - sigma). With the score of x_sigma,
grad log p = -(x + (1 - sigma) v) / sigma, the reverse SDE with diffusion coefficient g gives the Euler-Maruyama
step (dt = sigma' - sigma < 0)

    mean = x + [v + g^2 / (2 sigma) (x + (1 - sigma) v)] dt,      std = g sqrt(-dt),
    g = a sqrt(sigma / (1 - sigma))

with a the noise level. At sigma = 1 the coefficient is infinite; as Flow-GRPO does, the 1 - sigma of the
denominator is then taken at the schedule's largest sigma below 1 (`sigma_max`). With a = 0 the step is the
ODE's. Tensors are float32 whatever the model's dtype: the difference of two nearly equal bf16 numbers in the
mean would lose the log-probability.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class FlowStep(NamedTuple):
    """One step x_sigma -> x_sigma'. prev_sample: like the input sample; log_prob: float32 [B], the Gaussian
    log-density averaged over the elements of a sample (0 at a deterministic step); mean: float32 like sample;
    std: the step's standard deviation (0 at a deterministic step)."""

    prev_sample: torch.Tensor
    log_prob: torch.Tensor
    mean: torch.Tensor
    std: float


def sde_sigma_max(sigmas: torch.Tensor) -> float:
    """The largest sigma below 1 of a schedule (float [S + 1]): where the SDE's coefficient is evaluated at sigma = 1."""
    below = sigmas[sigmas < 1]
    return float(below.max()) if len(below) else 0.999


def flow_sde_std(sigma: float, sigma_next: float, noise_level: float, sigma_max: float) -> float:
    """The standard deviation a * sqrt(sigma / (1 - min(sigma, sigma_max))) * sqrt(sigma - sigma_next) of an SDE step."""
    g = noise_level * math.sqrt(sigma / (1 - min(sigma, sigma_max)))
    return g * math.sqrt(sigma - sigma_next)


def flow_sde_step_with_logprob(
    velocity: torch.Tensor,
    sample: torch.Tensor,
    sigma: float,
    sigma_next: float,
    *,
    noise_level: float,
    sigma_max: float,
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> FlowStep:
    """One step from noise level `sigma` to `sigma_next` (< sigma) and its log-probability (module docstring).

    velocity, sample: [B, ...] (Wan: [B, C, F, h, w]); velocity is the guided prediction. noise_level: a; 0
    takes the deterministic ODE step (log-probability 0). Without `prev_sample` one is drawn with `generator`
    (on the generator's device); with it, its log-probability is computed (training).
    """
    sigma, sigma_next = float(sigma), float(sigma_next)
    if not sigma > sigma_next >= 0:
        raise ValueError(f"A step goes from a higher noise level to a lower one >= 0, got sigma {sigma} -> {sigma_next}.")
    x, v = sample.float(), velocity.float()
    dt = sigma_next - sigma
    std = flow_sde_std(sigma, sigma_next, noise_level, sigma_max) if noise_level > 0 else 0.0
    if std == 0:
        mean = x + v * dt
        step = mean.to(sample.dtype) if prev_sample is None else prev_sample
        return FlowStep(step, torch.zeros(x.shape[0], device=x.device), mean, 0.0)
    g2 = (std**2) / -dt
    mean = x + (v + g2 / (2 * sigma) * (x + (1 - sigma) * v)) * dt
    if prev_sample is None:
        # Drawn on the generator's device, as diffusers' randn_tensor does, so a CPU generator seeds GPU runs.
        noise_device = generator.device if generator is not None else x.device
        noise = torch.randn(x.shape, generator=generator, device=noise_device, dtype=torch.float32).to(x.device)
        prev_sample = (mean + std * noise).to(sample.dtype)
    log_density = -((prev_sample.float() - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return FlowStep(prev_sample, log_density.mean(dim=tuple(range(1, log_density.ndim))), mean, std)
