"""AnimateDiff sampling with log-probabilities: DDIM with eta > 0 makes every step a Gaussian (DDPO).

`sample_with_logprobs` samples like `AnimateDiffPipeline.__call__` with a DDIMScheduler and records every
latent and step log-probability; `ddim_step_with_logprob` recomputes one step's log-probability in training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from diffusers import AnimateDiffPipeline, DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor

from .._diffusion import cfg_combine, predict_x0
from .trajectories import Trajectories


def _alphas(scheduler: DDIMScheduler, timestep: int) -> tuple[torch.Tensor, torch.Tensor]:
    if scheduler.num_inference_steps is None:
        raise ValueError("Call scheduler.set_timesteps(num_inference_steps) before stepping.")
    prev = int(timestep) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    alpha = scheduler.alphas_cumprod[int(timestep)]
    alpha_prev = scheduler.alphas_cumprod[prev] if prev >= 0 else scheduler.final_alpha_cumprod
    return alpha, alpha_prev


def ddim_step_std(scheduler: DDIMScheduler, timestep: int, eta: float) -> float:
    """The standard deviation of DDIM's step from `timestep`: eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))."""
    alpha, alpha_prev = _alphas(scheduler, timestep)
    return float(eta * ((1 - alpha_prev) / (1 - alpha) * (1 - alpha / alpha_prev)) ** 0.5)


def ddim_step_with_logprob(
    scheduler: DDIMScheduler,
    model_output: torch.Tensor,
    timestep: int,
    sample: torch.Tensor,
    *,
    eta: float,
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step x_t -> x_{t-1} and its log-probability under the step's Gaussian.

    The step is N(mean, std^2 I) with mean = sqrt(a_prev) x0 + sqrt(1 - a_prev - std^2) eps (x0, eps from
    `model_output` per the scheduler's prediction_type, x0 clipped as the scheduler clips it) and std from
    `ddim_step_std`. Without `prev_sample` one is drawn as `DDIMScheduler.step` draws it (same generator
    calls, so a seeded run reproduces the stock pipeline). The log-probability is the Gaussian log-density
    averaged over all elements of a sample (as in DDPO), float32 [B]; a step with std = 0 (the last step when
    the scheduler's set_alpha_to_one is True) is deterministic and gets log-probability 0.

    model_output, sample: [B, ...] latents (AnimateDiff: [B, C, F, h, w]). Returns (prev_sample like
    `sample`, log_prob float32 [B]).
    """
    if not isinstance(scheduler, DDIMScheduler):
        raise TypeError(f"DDPO sampling needs a DDIMScheduler, got {type(scheduler).__name__}.")
    if scheduler.config.thresholding:
        raise ValueError("DDIMScheduler with thresholding=True is not supported (its x0 depends on the whole batch).")
    alpha, alpha_prev = (a.to(device=sample.device, dtype=torch.float32) for a in _alphas(scheduler, timestep))
    x_t, output = sample.float(), model_output.float()
    x0 = predict_x0(output, x_t, alpha**0.5, (1 - alpha) ** 0.5, scheduler.config.prediction_type)
    # DDIM's eps comes from the unclipped x0, whatever the prediction type.
    eps = (x_t - alpha**0.5 * x0) / (1 - alpha) ** 0.5
    if scheduler.config.clip_sample:
        x0 = x0.clamp(-scheduler.config.clip_sample_range, scheduler.config.clip_sample_range)
    std = eta * ((1 - alpha_prev) / (1 - alpha) * (1 - alpha / alpha_prev)) ** 0.5
    mean = alpha_prev**0.5 * x0 + (1 - alpha_prev - std**2) ** 0.5 * eps
    if prev_sample is None:
        noise = randn_tensor(model_output.shape, generator=generator, device=model_output.device, dtype=model_output.dtype)
        prev_sample = (mean + std * noise.float()).to(sample.dtype)
    if std == 0:
        return prev_sample, torch.zeros(sample.shape[0], device=sample.device)
    log_prob = -((prev_sample.float() - mean) ** 2) / (2 * std**2) - torch.log(std) - math.log(math.sqrt(2 * math.pi))
    return prev_sample, log_prob.mean(dim=tuple(range(1, log_prob.ndim)))


def _guided_noise(unet, latents, timestep, prompt_embeds, negative_embeds, guidance_scale: float, num_frames: int):
    """The UNet's (guided) prediction, with the inputs laid out as AnimateDiffPipeline lays them out."""
    guided = guidance_scale > 1
    model_input = torch.cat([latents] * 2) if guided else latents
    embeds = torch.cat([negative_embeds, prompt_embeds]) if guided else prompt_embeds
    prediction = unet(model_input, timestep, encoder_hidden_states=embeds.repeat_interleave(num_frames, dim=0)).sample
    if guided:
        uncond, cond = prediction.chunk(2)
        prediction = cfg_combine(cond, uncond, guidance_scale)
    return prediction


@torch.no_grad()
def sample_with_logprobs(
    pipe: AnimateDiffPipeline,
    prompts: Sequence[str],
    *,
    num_frames: int = 16,
    height: int = 512,
    width: int = 512,
    num_inference_steps: int = 20,
    guidance_scale: float = 7.5,
    eta: float = 1.0,
    negative_prompt: str | None = None,
    generator: torch.Generator | None = None,
    latents: torch.Tensor | None = None,
) -> Trajectories:
    """Sample videos with DDIM like `pipe(prompts, eta=eta, generator=generator, output_type="pt")` and
    record every latent and step log-probability. With the same seed the videos equal the pipeline's.

    pipe: an AnimateDiffPipeline with a DDIMScheduler (its unet may carry a LoRA). latents: the initial
    noise x_T [B, C, F, height / 8, width / 8] (for SD1.5's VAE), drawn from `generator` when None.
    """
    device = pipe._execution_device
    guided = guidance_scale > 1
    prompt_embeds, negative_embeds = pipe.encode_prompt(list(prompts), device, 1, guided, negative_prompt)
    pipe.scheduler.set_timesteps(num_inference_steps, device=device)
    latents = pipe.prepare_latents(len(prompts), pipe.unet.config.in_channels, num_frames, height, width,
                                   prompt_embeds.dtype, device, generator, latents)
    path, log_probs = [latents], []
    for t in pipe.scheduler.timesteps:
        noise = _guided_noise(pipe.unet, pipe.scheduler.scale_model_input(latents, t), t, prompt_embeds,
                              negative_embeds, guidance_scale, num_frames)
        latents, log_prob = ddim_step_with_logprob(pipe.scheduler, noise, t, latents, eta=eta, generator=generator)
        path.append(latents)
        log_probs.append(log_prob)
    videos = (pipe.decode_latents(latents) / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)
    return Trajectories(
        prompts=list(prompts),
        latents=torch.stack(path, dim=1),
        log_probs=torch.stack(log_probs, dim=1),
        timesteps=pipe.scheduler.timesteps.clone(),
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_embeds if guided else None,
        videos=videos.float(),
    )
