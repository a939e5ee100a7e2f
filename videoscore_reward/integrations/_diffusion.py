"""Diffusion maths shared by the diffusers integration and the RL trainers: the clean-sample estimate
x0 from a model output by prediction type, at the noise level the scheduler actually uses, and
classifier-free guidance.

Notation: a noisy sample is x_t = alpha_t * x0 + sigma_t * eps. Variance-preserving schedules
(DDPM/DDIM) have alpha_t = sqrt(alphas_cumprod[t]) and sigma_t = sqrt(1 - alphas_cumprod[t]); flow
matching (rectified flow) has alpha_t = 1 - sigma_t and the model predicts v = eps - x0.
"""

from __future__ import annotations

from typing import Literal

import torch

PredictionType = Literal["epsilon", "v_prediction", "sample", "flow_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample", "flow_prediction")

# Schedulers by how their `sample` relates to x0 (diffusers class names, so no diffusers import here).
_ALPHAS_CUMPROD = {"DDIMScheduler", "DDPMScheduler", "CogVideoXDDIMScheduler", "CogVideoXDPMScheduler"}
_VP_SIGMAS = {"DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler"}
_VE_SIGMAS = {"EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"}
_FLOW = {"FlowMatchEulerDiscreteScheduler"}
SUPPORTED_SCHEDULERS: tuple[str, ...] = tuple(sorted(_ALPHAS_CUMPROD | _VP_SIGMAS | _VE_SIGMAS | _FLOW))


def predict_x0(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_t: torch.Tensor | float,
    sigma_t: torch.Tensor | float,
    prediction_type: PredictionType,
) -> torch.Tensor:
    """The clean estimate x0 from what the model predicted at x_t = `sample`.

    epsilon: (x_t - sigma_t * eps) / alpha_t; v_prediction: alpha_t * x_t - sigma_t * v;
    sample: the output itself; flow_prediction: x_t - sigma_t * v (rectified flow, alpha_t = 1 - sigma_t).
    Tensors of any shape; alpha_t and sigma_t are scalars or broadcast against `sample`. Computed in
    the dtype of `sample`.
    """
    if prediction_type == "epsilon":
        return (sample - sigma_t * model_output) / alpha_t
    if prediction_type == "v_prediction":
        return alpha_t * sample - sigma_t * model_output
    if prediction_type == "sample":
        return model_output
    if prediction_type == "flow_prediction":
        return sample - sigma_t * model_output
    raise ValueError(f"Unknown prediction_type {prediction_type!r}: expected one of {PREDICTION_TYPES}.")


def scheduler_x0(scheduler, model_output: torch.Tensor, timestep, sample: torch.Tensor, step_index: int | None) -> torch.Tensor:
    """x0 for the arguments of one `scheduler.step(model_output, timestep, sample)`, at the scheduler's own
    noise level: `alphas_cumprod[timestep]` for DDPM/DDIM-type schedulers, `sigmas[step_index]` for the
    sigma-indexed ones (Euler, DPM++, UniPC, FlowMatchEuler), so float timesteps are never rounded.

    step_index: the index of this step in `scheduler.sigmas` (ignored by DDPM/DDIM-type schedulers).
    Euler-type schedulers keep `sample` unscaled (x0 + sigma * eps): it is brought to the
    variance-preserving form first, as their `scale_model_input` does for the model.
    """
    name = type(scheduler).__name__
    if name not in SUPPORTED_SCHEDULERS:
        raise ValueError(f"Scheduler {name} is not supported: expected one of {', '.join(SUPPORTED_SCHEDULERS)}.")
    config = scheduler.config
    kind = config.get("prediction_type", "flow_prediction" if name in _FLOW else None)
    sample = sample.to(torch.float32)
    model_output = model_output.to(torch.float32)
    if name in _ALPHAS_CUMPROD:
        t = int(timestep)
        alpha_bar = scheduler.alphas_cumprod[t].to(sample.device, torch.float32)
        x0 = predict_x0(model_output, sample, alpha_bar.sqrt(), (1 - alpha_bar).sqrt(), kind)
        if name in ("DDIMScheduler", "DDPMScheduler") and config.clip_sample:  # CogVideoX's never clip
            x0 = x0.clamp(-config.clip_sample_range, config.clip_sample_range)
        return x0
    if step_index is None:
        raise ValueError(f"{name} indexes its noise levels by step: step_index is needed.")
    sigma = scheduler.sigmas[step_index].to(sample.device, torch.float32)
    if name in _FLOW or config.get("use_flow_sigmas", False):
        return predict_x0(model_output, sample, 1 - sigma, sigma, kind)
    if name in _VP_SIGMAS:
        alpha_t = 1 / (sigma**2 + 1).sqrt()
        return predict_x0(model_output, sample, alpha_t, sigma * alpha_t, kind)
    alpha_t = 1 / (sigma**2 + 1).sqrt()  # Euler-type: scaled back to the variance-preserving x_t
    return predict_x0(model_output, sample * alpha_t, alpha_t, sigma * alpha_t, kind)


def cfg_combine(
    cond: torch.Tensor, uncond: torch.Tensor, guidance_scale: float, guidance_rescale: float = 0.0
) -> torch.Tensor:
    """Classifier-free guidance: uncond + guidance_scale * (cond - uncond), as diffusers pipelines do.

    guidance_rescale > 0 rescales the result toward the standard deviation of `cond` (per sample,
    over all other dimensions), as diffusers' `rescale_noise_cfg` ("Common Diffusion Noise Schedules
    and Sample Steps are Flawed", section 3.4). cond, uncond: [B, ...] of the same shape.
    """
    guided = uncond + guidance_scale * (cond - uncond)
    if guidance_rescale > 0:
        dims = list(range(1, cond.ndim))
        rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
        guided = guidance_rescale * rescaled + (1 - guidance_rescale) * guided
    return guided
