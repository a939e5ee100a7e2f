"""DDPO (and reward-weighted regression) for AnimateDiff with LoRA: sample with log-probabilities, score,
normalize, update.

One epoch: sample `sample_num_batches_per_epoch` batches of videos with DDIM (eta > 0), recording every
latent x_S..x_0 and the log-probability of each step under the policy; score them with the reward function
(in a worker thread while the next batch is sampled); turn rewards into advantages (per prompt, per aspect
or per batch); then for each recorded step recompute the log-probability under the current LoRA and
minimize the PPO clipped objective (DDPO-IS, Black et al. 2023) or the RWR objective. Only the LoRA
parameters train; checkpoints are diffusers LoRA files that `AnimateDiffPipeline.load_lora_weights` reads.

Needs the `train` extra: `pip install videoscore-reward[train]`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

try:
    from diffusers import AnimateDiffPipeline, DDIMScheduler
    from diffusers.training_utils import cast_training_params
    from diffusers.utils import convert_state_dict_to_diffusers
    from diffusers.utils.torch_utils import randn_tensor
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "videoscore_reward.integrations.rl.ddpo needs diffusers and peft: pip install 'videoscore-reward[train]'"
    ) from error

from .advantages import PerPromptStatTracker, per_aspect_advantages
from .rewards import RewardFn

_LORA_TARGETS = {
    "motion": r".*motion_modules.*\.(to_q|to_k|to_v|to_out\.0)",
    "spatial": r".*attentions.*\.(to_q|to_k|to_v|to_out\.0)",
    "both": r".*(motion_modules|attentions).*\.(to_q|to_k|to_v|to_out\.0)",
}


@dataclass
class DDPOConfig:
    """Every knob of `DDPOTrainer`, with defaults for AnimateDiff (SD1.5) on one 80 GB GPU."""

    # Run
    num_epochs: int = 100
    """Epochs for `train()`: each samples, scores and trains once."""
    seed: int = 0
    """Seeds sampling noise, prompt draws and shuffling (offset by the process index)."""
    project_dir: str = "ddpo-animatediff"
    """Where checkpoints (`checkpoint-EPOCH/`) and tracker files go."""
    log_with: Any = None
    """accelerate trackers: "tensorboard", "wandb", "all", a `GeneralTracker`, or a list of them; None logs nothing."""
    tracker_project_name: str = "ddpo-animatediff"
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """Frozen weights are cast to this dtype and forward passes autocast; LoRA weights stay float32."""
    save_every: int = 10
    """Save the LoRA every this many epochs (0: never; call `save_lora` yourself)."""

    # Objective and advantages
    objective: Literal["ddpo", "rwr"] = "ddpo"
    """"ddpo": PPO clipped objective on per-step importance ratios; "rwr": reward-weighted regression."""
    advantages: Literal["per_prompt", "per_aspect", "batch"] = "per_prompt"
    """How rewards become advantages: per-prompt stat tracker, per-aspect normalization (needs a reward_fn
    with per-aspect scores, e.g. `reward.as_reward_fn()`), or (r - mean) / std over the epoch."""
    tracker_buffer_size: int = 16
    """Rewards remembered per prompt by the stat tracker."""
    tracker_min_count: int = 16
    """Rewards a prompt needs before its own statistics replace the epoch's."""
    rwr_temperature: float = 1.0
    """RWR weights: softmax(advantage / temperature) * N, so they average 1."""

    # Sampling
    num_frames: int = 16
    height: int = 512
    width: int = 512
    sample_num_steps: int = 20
    """DDIM steps per video."""
    sample_eta: float = 1.0
    """DDIM eta; must be > 0 so each step is a Gaussian with a log-probability."""
    sample_guidance_scale: float = 7.5
    """Classifier-free guidance scale (<= 1 disables it)."""
    negative_prompt: str | None = None
    sample_batch_size: int = 1
    """Videos per sampling batch (per process)."""
    sample_num_batches_per_epoch: int = 4
    sample_shared_initial_noise: bool = False
    """All videos of a sampling batch share one prompt and one initial noise x_T (as in DanceGRPO), so their
    reward differences come from the policy's steps alone, not from the luck of x_T; use with
    advantages="batch" and one sampling batch per epoch, or per-prompt advantages."""
    async_reward: bool = True
    """Score a batch in a worker thread while the next one is sampled."""

    # Training
    train_batch_size: int = 1
    """Videos per training forward pass; divides sample_batch_size * sample_num_batches_per_epoch."""
    train_gradient_accumulation_steps: int = 1
    """Training batches per optimizer step (each accumulates over all its trained timesteps)."""
    train_learning_rate: float = 3e-4
    train_adam_beta1: float = 0.9
    train_adam_beta2: float = 0.999
    train_adam_weight_decay: float = 1e-4
    train_adam_epsilon: float = 1e-8
    train_max_grad_norm: float = 1.0
    train_num_inner_epochs: int = 1
    """Passes over each epoch's samples."""
    train_clip_range: float = 1e-4
    """PPO clip range on the importance ratio (DDPO's default; the per-step ratios stay very close to 1)."""
    train_adv_clip_max: float = 5.0
    """Advantages are clipped to [-adv_clip_max, adv_clip_max]."""
    train_timestep_fraction: float = 1.0
    """Fraction of the sampled steps trained on per batch (a random subset)."""

    # LoRA
    lora_rank: int = 8
    lora_alpha: float | None = None
    """LoRA alpha; None uses the rank (scale 1)."""
    lora_target: Literal["motion", "spatial", "both"] = "motion"
    """Attention projections (to_q, to_k, to_v, to_out) of the motion modules, the spatial transformers, or both."""

    def __post_init__(self):
        checks = {
            "objective": (self.objective, ("ddpo", "rwr")),
            "advantages": (self.advantages, ("per_prompt", "per_aspect", "batch")),
            "mixed_precision": (self.mixed_precision, ("no", "fp16", "bf16")),
            "lora_target": (self.lora_target, tuple(_LORA_TARGETS)),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")
        if not self.sample_eta > 0:
            raise ValueError(f"sample_eta must be > 0 (eta = 0 makes DDIM deterministic: no log-probability), got {self.sample_eta}.")
        if not 0 < self.train_timestep_fraction <= 1:
            raise ValueError(f"train_timestep_fraction must be in (0, 1], got {self.train_timestep_fraction}.")
        samples = self.sample_batch_size * self.sample_num_batches_per_epoch
        per_step = self.train_batch_size * self.train_gradient_accumulation_steps
        if samples % per_step:
            raise ValueError(
                f"sample_batch_size * sample_num_batches_per_epoch ({samples}) must be a multiple of "
                f"train_batch_size * train_gradient_accumulation_steps ({per_step}), so every optimizer step is complete."
            )


# ----------------------------------------------------------------------------------------------------------
# DDIM with log-probabilities


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
    prediction = scheduler.config.prediction_type
    if prediction == "epsilon":
        x0, eps = (x_t - (1 - alpha) ** 0.5 * output) / alpha**0.5, output
    elif prediction == "v_prediction":
        x0, eps = alpha**0.5 * x_t - (1 - alpha) ** 0.5 * output, alpha**0.5 * output + (1 - alpha) ** 0.5 * x_t
    elif prediction == "sample":
        x0, eps = output, (x_t - alpha**0.5 * output) / (1 - alpha) ** 0.5
    else:
        raise ValueError(f"Unknown prediction_type {prediction!r}.")
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
        prediction = uncond + guidance_scale * (cond - uncond)
    return prediction


@dataclass
class Trajectories:
    """Sampled videos with what training needs to recompute their log-probabilities.

    latents: [B, S + 1, C, F, h, w], x_T first, x_0 last; log_probs: float32 [B, S]; timesteps: long [S];
    prompt_embeds / negative_prompt_embeds: [B, L, D] (negative is None without guidance);
    videos: float32 [B, F, C, H, W] in [0, 1] (what the pipeline returns with output_type="pt").
    """

    prompts: list[str]
    latents: torch.Tensor
    log_probs: torch.Tensor
    timesteps: torch.Tensor
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None
    videos: torch.Tensor

    @classmethod
    def cat(cls, parts: list["Trajectories"]) -> "Trajectories":
        negatives = [p.negative_prompt_embeds for p in parts]
        return cls(
            prompts=[prompt for p in parts for prompt in p.prompts],
            latents=torch.cat([p.latents for p in parts]),
            log_probs=torch.cat([p.log_probs for p in parts]),
            timesteps=parts[0].timesteps,
            prompt_embeds=torch.cat([p.prompt_embeds for p in parts]),
            negative_prompt_embeds=None if negatives[0] is None else torch.cat(negatives),
            videos=torch.cat([p.videos for p in parts]),
        )


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


# ----------------------------------------------------------------------------------------------------------
# Objectives


def ppo_clipped_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_range: float,
    adv_clip_max: float = math.inf,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO clipped objective for one denoising step (DDPO-IS).

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


# ----------------------------------------------------------------------------------------------------------
# Trainer


def _resolve(value):
    return value.result() if isinstance(value, Future) else value


class DDPOTrainer:
    """DDPO / RWR fine-tuning of an AnimateDiff pipeline's UNet through a LoRA.

    config: a `DDPOConfig`. pipe: an `AnimateDiffPipeline` whose scheduler is a DDIMScheduler; the trainer
    freezes it, moves it to accelerate's device and adds the LoRA to `pipe.unet` (so `pipe` itself samples
    from the current policy). reward_fn: `reward_fn(videos, prompts, metadata) -> (rewards [B], info)` with
    videos float [B, F, C, H, W] in [0, 1] (e.g. `VideoScoreReward.as_reward_fn()`, `multi_reward`); info
    entries that are [B] tensors are logged as "reward/<name>" means. prompts: the prompts to draw from
    (uniformly, seeded); repeat a few prompts rather than many once, the stat tracker needs repeats.
    Run it with `train()`; under `accelerate launch` each process samples its own batches.
    """

    def __init__(self, config: DDPOConfig, pipe: AnimateDiffPipeline, reward_fn: RewardFn, prompts: Sequence[str]):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration, set_seed

        if not isinstance(pipe.scheduler, DDIMScheduler):
            raise TypeError(f"DDPOTrainer samples with DDIM; pipe.scheduler is a {type(pipe.scheduler).__name__}. "
                            "Set pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config).")
        prompts = list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompts must be a non-empty list of strings.")
        if config.advantages == "per_aspect" and getattr(reward_fn, "weights", None) is None:
            raise ValueError("advantages='per_aspect' needs a reward_fn with aspect weights and info['scores'], "
                             "such as VideoScoreReward.as_reward_fn().")
        self.config, self.pipe, self.reward_fn, self.prompts = config, pipe, reward_fn, prompts

        pipe.scheduler.set_timesteps(config.sample_num_steps)
        stds = [ddim_step_std(pipe.scheduler, t, config.sample_eta) for t in pipe.scheduler.timesteps]
        # A zero-variance step (set_alpha_to_one=True at the end) has no log-probability to train on.
        self._trainable_steps = [j for j, std in enumerate(stds) if std > 0]
        self._steps_per_batch = max(1, round(len(self._trainable_steps) * config.train_timestep_fraction))
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.train_gradient_accumulation_steps * self._steps_per_batch,
            log_with=config.log_with,
            project_config=ProjectConfiguration(project_dir=config.project_dir),
        )
        set_seed(config.seed, device_specific=True)
        seed = config.seed + self.accelerator.process_index
        self._generator = torch.Generator(self.accelerator.device).manual_seed(seed)
        self._cpu_generator = torch.Generator().manual_seed(seed)

        dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.mixed_precision]
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.requires_grad_(False)
        pipe.to(self.accelerator.device, dtype)
        pipe.set_progress_bar_config(disable=True)
        pipe.unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                                         target_modules=_LORA_TARGETS[config.lora_target]))
        cast_training_params(pipe.unet, dtype=torch.float32)
        self.lora_parameters = [p for p in pipe.unet.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            self.lora_parameters, lr=config.train_learning_rate,
            betas=(config.train_adam_beta1, config.train_adam_beta2),
            weight_decay=config.train_adam_weight_decay, eps=config.train_adam_epsilon,
        )
        self.unet, self.optimizer = self.accelerator.prepare(pipe.unet, optimizer)
        self.stat_tracker = PerPromptStatTracker(config.tracker_buffer_size, config.tracker_min_count)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddpo-reward") if config.async_reward else None
        self.global_step = 0
        self.epoch = 0
        if config.log_with is not None:
            self.accelerator.init_trackers(config.tracker_project_name, config=_flat_config(config))

    # -- sampling and rewards ------------------------------------------------------------------------------

    def _draw_prompts(self, count: int) -> list[str]:
        picks = torch.randint(len(self.prompts), (count,), generator=self._cpu_generator)
        return [self.prompts[i] for i in picks.tolist()]

    def _score(self, trajectories: Trajectories):
        prompts = trajectories.prompts
        return self.reward_fn(trajectories.videos, prompts, [{} for _ in prompts])

    def sample_epoch(self) -> tuple[Trajectories, torch.Tensor, dict[str, torch.Tensor]]:
        """Sample and score one epoch's batches on this process: (trajectories, rewards float32 [N], info)."""
        config, batches, scored = self.config, [], []
        self.unet.eval()
        for _ in range(config.sample_num_batches_per_epoch):
            count, latents = config.sample_batch_size, None
            if config.sample_shared_initial_noise:
                prompts = self._draw_prompts(1) * count
                latents = self.pipe.prepare_latents(1, self.pipe.unet.config.in_channels, config.num_frames, config.height,
                                                    config.width, self.pipe.unet.dtype, self.accelerator.device,
                                                    self._generator).repeat(count, 1, 1, 1, 1)
            else:
                prompts = self._draw_prompts(count)
            with self.accelerator.autocast():
                batch = sample_with_logprobs(
                    self.pipe, prompts, num_frames=config.num_frames,
                    height=config.height, width=config.width, num_inference_steps=config.sample_num_steps,
                    guidance_scale=config.sample_guidance_scale, eta=config.sample_eta,
                    negative_prompt=config.negative_prompt, generator=self._generator, latents=latents,
                )
            batches.append(batch)
            scored.append(self._executor.submit(self._score, batch) if self._executor else self._score(batch))
        rewards, infos = [], []
        for result in scored:
            batch_rewards, info = (_resolve(x) for x in _resolve(result))
            rewards.append(torch.as_tensor(batch_rewards, dtype=torch.float32).detach().cpu().reshape(-1))
            infos.append({k: v.detach().float().cpu() for k, v in (info or {}).items() if isinstance(v, torch.Tensor)})
        info = {k: torch.cat([i[k] for i in infos]) for k in infos[0]}
        return Trajectories.cat(batches), torch.cat(rewards), info

    def compute_advantages(self, prompts: list[str], rewards: torch.Tensor, info: dict[str, torch.Tensor]) -> torch.Tensor:
        """Advantages float32 [N] for this process's samples, computed over all processes' samples."""
        from accelerate.utils import gather_object

        accelerator, config = self.accelerator, self.config
        all_prompts = gather_object(prompts)
        if config.advantages == "per_aspect":
            scores = accelerator.gather(info["scores"].to(accelerator.device)).cpu()
            values = per_aspect_advantages(all_prompts, scores, self.reward_fn.weights, self.stat_tracker)
        else:
            all_rewards = accelerator.gather(rewards.to(accelerator.device)).cpu().numpy()
            if config.advantages == "per_prompt":
                values = self.stat_tracker.update(all_prompts, all_rewards)
            else:
                values = (all_rewards - all_rewards.mean()) / (all_rewards.std() + 1e-6)
        values = torch.as_tensor(np.asarray(values), dtype=torch.float32).reshape(accelerator.num_processes, -1)
        return values[accelerator.process_index].to(accelerator.device)

    # -- training ------------------------------------------------------------------------------------------

    def log_probs(self, trajectories: Trajectories, index: torch.Tensor, step: int) -> torch.Tensor:
        """The current policy's log-probability float32 [len(index)] of recorded step `step` of samples `index`."""
        config, scheduler = self.config, self.pipe.scheduler
        timestep = trajectories.timesteps[step]
        latents = trajectories.latents[index, step]
        negative = trajectories.negative_prompt_embeds
        with self.accelerator.autocast():
            noise = _guided_noise(self.unet, scheduler.scale_model_input(latents, timestep), timestep,
                                  trajectories.prompt_embeds[index], None if negative is None else negative[index],
                                  config.sample_guidance_scale, config.num_frames)
        _, log_prob = ddim_step_with_logprob(scheduler, noise, timestep, latents, eta=config.sample_eta,
                                             prev_sample=trajectories.latents[index, step + 1])
        return log_prob

    def train_on(self, trajectories: Trajectories, advantages: torch.Tensor) -> dict[str, float]:
        """Inner epochs of updates on sampled trajectories; returns the mean loss, approx_kl and clipfrac."""
        config, accelerator = self.config, self.accelerator
        scheduler = self.pipe.scheduler
        scheduler.set_timesteps(config.sample_num_steps, device=accelerator.device)
        if config.objective == "rwr":
            advantages = rwr_weights(advantages.clamp(-config.train_adv_clip_max, config.train_adv_clip_max),
                                     config.rwr_temperature)
        self.unet.train()
        records: dict[str, list[float]] = {"loss": [], "approx_kl": [], "clipfrac": []}
        count = len(trajectories.prompts)
        trainable = torch.tensor(self._trainable_steps)
        for _ in range(config.train_num_inner_epochs):
            order = torch.randperm(count, generator=self._cpu_generator)
            for start in range(0, count, config.train_batch_size):
                index = order[start : start + config.train_batch_size].to(trajectories.latents.device)
                steps = trainable[torch.randperm(len(trainable), generator=self._cpu_generator)[: self._steps_per_batch]]
                for step in sorted(steps.tolist()):
                    with accelerator.accumulate(self.unet):
                        log_prob = self.log_probs(trajectories, index, step)
                        if config.objective == "ddpo":
                            loss, stats = ppo_clipped_loss(log_prob, trajectories.log_probs[index, step], advantages[index],
                                                           config.train_clip_range, config.train_adv_clip_max)
                        else:
                            loss, stats = rwr_loss(log_prob, advantages[index]), {}
                        accelerator.backward(loss)
                        if accelerator.sync_gradients:
                            accelerator.clip_grad_norm_(self.lora_parameters, config.train_max_grad_norm)
                        self.optimizer.step()
                        self.optimizer.zero_grad()
                    records["loss"].append(loss.item())
                    for key, value in stats.items():
                        records[key].append(value.item())
                    if accelerator.sync_gradients:
                        self.global_step += 1
        self.unet.eval()
        return {f"train/{k}": float(np.mean(v)) for k, v in records.items() if v}

    def step(self) -> dict[str, float]:
        """One epoch: sample, score, compute advantages, train. Returns (and logs) its metrics."""
        trajectories, rewards, info = self.sample_epoch()
        advantages = self.compute_advantages(trajectories.prompts, rewards, info)
        accelerator = self.accelerator
        all_rewards = accelerator.gather(rewards.to(accelerator.device)).cpu()
        logs = {"epoch": self.epoch, "reward/mean": all_rewards.mean().item(), "reward/std": all_rewards.std(correction=0).item()}
        for key, value in info.items():
            if value.ndim == 1:
                logs[f"reward/{key}"] = accelerator.gather(value.to(accelerator.device)).mean().item()
        logs.update(self.train_on(trajectories, advantages))
        accelerator.log(logs, step=self.global_step)
        self.epoch += 1
        if self.config.save_every and self.epoch % self.config.save_every == 0:
            self.save_lora(os.path.join(self.config.project_dir, f"checkpoint-{self.epoch}"))
        return logs

    def train(self, num_epochs: int | None = None, callback: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        """Run `num_epochs` (default `config.num_epochs`) epochs; returns every epoch's metrics."""
        history = []
        for _ in range(self.config.num_epochs if num_epochs is None else num_epochs):
            history.append(self.step())
            if callback is not None:
                callback(history[-1])
        self.accelerator.wait_for_everyone()
        return history

    def save_lora(self, directory: str | os.PathLike) -> None:
        """Write the LoRA as diffusers LoRA weights (`pytorch_lora_weights.safetensors` with its adapter
        config), loadable with `AnimateDiffPipeline.load_lora_weights(directory)`. Main process only."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            unet = self.accelerator.unwrap_model(self.unet)
            AnimateDiffPipeline.save_lora_weights(
                directory,
                unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
                unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
            )

    def end(self) -> None:
        """Stop the reward worker and close the trackers."""
        if self._executor is not None:
            self._executor.shutdown()
        self.accelerator.end_training()


def _flat_config(config: DDPOConfig) -> dict[str, Any]:
    # Trackers accept scalars and strings only.
    return {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for k, v in asdict(config).items()}
