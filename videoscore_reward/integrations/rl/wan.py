"""Wan 2.1 / 2.2 (`WanPipeline`) sampling with log-probabilities through the flow SDE (Flow-GRPO).

The loop is `WanPipeline.__call__`'s: the same prompt encoding, initial noise, timesteps, two forward
passes for classifier-free guidance, Wan 2.2's switch from the high-noise `transformer` to the low-noise
`transformer_2` at `boundary_ratio * num_train_timesteps`, and the same decoding. The steps differ: the steps
in `sde_steps` are SDE steps with a log-probability (`flow_sde_step_with_logprob`), the others Euler ODE steps
on the scheduler's sigmas. With no SDE step the videos equal the pipeline's with a
FlowMatchEulerDiscreteScheduler of the same sigmas.

A family adapter is these four pieces: encode prompts, the guided velocity of a denoiser, the expert of a
timestep, decode latents. HunyuanVideo and LTX need their own (see the README's GRPO section).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._diffusion import cfg_combine
from .flow_sde import FlowStep, flow_sde_step_with_logprob, sde_sigma_max
from .trajectories import Trajectories


def flow_schedule(pipe, num_inference_steps: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Set the pipeline's scheduler to `num_inference_steps` and return (timesteps [S], sigmas float [S + 1])."""
    scheduler = pipe.scheduler
    scheduler.set_timesteps(num_inference_steps, device=device)
    sigmas = getattr(scheduler, "sigmas", None)
    flow = type(scheduler).__name__.startswith("FlowMatch") or scheduler.config.get("prediction_type") == "flow_prediction"
    if not flow or sigmas is None or len(sigmas) != len(scheduler.timesteps) + 1:
        raise TypeError(
            f"GRPO needs a flow-matching scheduler with one sigma per step plus the final one, got "
            f"{type(scheduler).__name__}. Use FlowMatchEulerDiscreteScheduler or UniPCMultistepScheduler with "
            "prediction_type='flow_prediction' and use_flow_sigmas=True (Wan's own)."
        )
    return scheduler.timesteps, sigmas.detach().float().cpu()


def expert_name(pipe, timestep) -> str:
    """"transformer" (Wan 2.1, or 2.2's high-noise expert at t >= boundary) or "transformer_2"."""
    ratio = pipe.config.get("boundary_ratio")
    if ratio is None or pipe.transformer_2 is None or float(timestep) >= ratio * pipe.scheduler.config.num_train_timesteps:
        return "transformer"
    return "transformer_2"


def wan_velocity(model, pipe, latents: torch.Tensor, timestep, prompt_embeds: torch.Tensor,
                 negative_embeds: torch.Tensor | None, guidance_scale: float) -> torch.Tensor:
    """The guided velocity, as WanPipeline computes it: a conditional and (with negative_embeds) an
    unconditional pass, v = v_u + s (v_c - v_u). latents: [B, C, F, h, w]; embeds: [B, L, D]."""
    dtype = prompt_embeds.dtype
    inputs = latents.to(dtype)
    if pipe.config.get("expand_timesteps"):
        # Wan 2.2 TI2V: one timestep per latent token (text-to-video: all equal).
        tokens = inputs.shape[2] * (inputs.shape[3] // 2) * (inputs.shape[4] // 2)
        timesteps = torch.full((inputs.shape[0], tokens), float(timestep), device=inputs.device)
    else:
        timesteps = torch.as_tensor(timestep, device=inputs.device).expand(inputs.shape[0])
    velocity = model(hidden_states=inputs, timestep=timesteps, encoder_hidden_states=prompt_embeds, return_dict=False)[0]
    if negative_embeds is not None:
        uncond = model(hidden_states=inputs, timestep=timesteps, encoder_hidden_states=negative_embeds, return_dict=False)[0]
        velocity = cfg_combine(velocity, uncond, guidance_scale)
    return velocity


def decode_wan_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents [B, C, F, h, w] -> videos float32 [B, F, 3, H, W] in [0, 1], as WanPipeline decodes them."""
    vae = pipe.vae
    latents = latents.to(vae.device, vae.dtype)
    mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
    std = torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
    video = vae.decode(latents * std + mean, return_dict=False)[0]
    return pipe.video_processor.postprocess_video(video, output_type="pt").float()


class WanStepper:
    """One recorded step of a Wan trajectory, recomputed by the models being trained.

    models: {"transformer": ..., "transformer_2": ...} (the trainer's prepared models; a missing expert is
    taken from the pipe). guidance_scale_2: Wan 2.2's low-noise guidance (None: guidance_scale).
    """

    def __init__(self, pipe, num_inference_steps: int, guidance_scale: float, guidance_scale_2: float | None,
                 noise_level: float, device, models: dict | None = None):
        self.pipe, self.noise_level, self.models = pipe, noise_level, dict(models or {})
        self.guidance = {"transformer": guidance_scale,
                         "transformer_2": guidance_scale if guidance_scale_2 is None else guidance_scale_2}
        self.timesteps, self.sigmas = flow_schedule(pipe, num_inference_steps, device)
        self.sigma_max = sde_sigma_max(self.sigmas)

    def model(self, step: int):
        name = expert_name(self.pipe, self.timesteps[step])
        return name, self.models[name] if name in self.models else getattr(self.pipe, name)

    def __call__(self, step: int, latents: torch.Tensor, prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor | None,
                 *, stochastic: bool, prev_sample: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> FlowStep:
        name, model = self.model(step)
        velocity = wan_velocity(model, self.pipe, latents, self.timesteps[step], prompt_embeds, negative_embeds,
                                self.guidance[name])
        return flow_sde_step_with_logprob(
            velocity, latents, self.sigmas[step], self.sigmas[step + 1], noise_level=self.noise_level if stochastic else 0.0,
            sigma_max=self.sigma_max, prev_sample=prev_sample, generator=generator,
        )


@torch.no_grad()
def sample_wan_with_logprobs(
    pipe,
    prompts: Sequence[str],
    *,
    num_frames: int = 33,
    height: int = 240,
    width: int = 416,
    num_inference_steps: int = 10,
    guidance_scale: float = 4.5,
    guidance_scale_2: float | None = None,
    noise_level: float = 0.7,
    sde_steps: Sequence[int] | None = None,
    negative_prompt: str | None = None,
    max_sequence_length: int = 512,
    generator: torch.Generator | None = None,
    latents: torch.Tensor | None = None,
) -> Trajectories:
    """Sample videos with a WanPipeline through the flow SDE and record every latent and step log-probability.

    sde_steps: the indices (0-based, of num_inference_steps) of the stochastic steps; None: all, []: none (the
    deterministic ODE). latents: the initial noise [B, C, (num_frames - 1) / 4 + 1, height / 8, width / 8],
    drawn from `generator` like the pipeline draws it when None. Returns `Trajectories` with
    trainable[:, j] True at the SDE steps (the ODE steps have log-probability 0 and nothing to train).
    """
    device = pipe._execution_device
    guided = guidance_scale > 1
    prompt_embeds, negative_embeds = pipe.encode_prompt(
        prompt=list(prompts), negative_prompt=negative_prompt, do_classifier_free_guidance=guided,
        max_sequence_length=max_sequence_length, device=device)
    dtype = (pipe.transformer or pipe.transformer_2).dtype
    prompt_embeds = prompt_embeds.to(dtype)
    negative_embeds = negative_embeds.to(dtype) if guided else None
    stepper = WanStepper(pipe, num_inference_steps, guidance_scale, guidance_scale_2, noise_level, device)
    stochastic = torch.zeros(len(prompts), num_inference_steps, dtype=torch.bool)
    stochastic[:, list(range(num_inference_steps)) if sde_steps is None else list(sde_steps)] = True
    channels = (pipe.transformer or pipe.transformer_2).config.in_channels
    latents = pipe.prepare_latents(len(prompts), channels, height, width, num_frames, torch.float32, device, generator, latents)
    path, log_probs = [latents], []
    for j in range(num_inference_steps):
        step = stepper(j, latents, prompt_embeds, negative_embeds, stochastic=bool(stochastic[0, j]), generator=generator)
        latents = step.prev_sample
        path.append(latents)
        log_probs.append(step.log_prob)
    return Trajectories(
        prompts=list(prompts),
        latents=torch.stack(path, dim=1),
        log_probs=torch.stack(log_probs, dim=1),
        timesteps=stepper.timesteps.clone(),
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_embeds,
        videos=decode_wan_latents(pipe, latents),
        trainable=stochastic.to(latents.device),
    )
