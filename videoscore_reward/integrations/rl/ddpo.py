"""DDPO (and reward-weighted regression) for AnimateDiff with LoRA: sample with log-probabilities, score,
normalize, update.

One epoch: sample `sample_num_batches_per_epoch` batches of videos with DDIM (eta > 0), recording every
latent x_S..x_0 and the log-probability of each step under the policy; score them with the reward function
(in a worker thread while the next batch is sampled); turn rewards into advantages (per prompt, per aspect
or per batch); then for each recorded step recompute the log-probability under the current LoRA and
minimize the PPO clipped objective (DDPO-IS, Black et al. 2023) or the RWR objective. Only the LoRA
parameters train; checkpoints are diffusers LoRA files that `AnimateDiffPipeline.load_lora_weights` reads,
plus the training state that `resume_from` continues from.

Needs the `train` extra (from a checkout: `pip install -e ".[train]"`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...extras import require

require("train", "videoscore_reward.integrations.rl.ddpo")  # one clear line before diffusers/peft imports fail

from diffusers import AnimateDiffPipeline, DDIMScheduler  # noqa: E402
from peft import LoraConfig  # noqa: E402

from ._trainer import LoRATrainerBase
from .advantages import PerPromptStatTracker, per_aspect_advantages
from .animatediff import _guided_noise, ddim_step_std, ddim_step_with_logprob, sample_with_logprobs
from .config import DDPO_LORA_TARGETS, DDPOConfig
from .losses import ppo_clipped_loss, rwr_loss, rwr_weights
from .rewards import RewardFn
from .trajectories import Trajectories

__all__ = ["DDPOConfig", "DDPOTrainer", "Trajectories", "ddim_step_std", "ddim_step_with_logprob",
           "ppo_clipped_loss", "rwr_loss", "rwr_weights", "sample_with_logprobs"]


class DDPOTrainer(LoRATrainerBase):
    """DDPO / RWR fine-tuning of an AnimateDiff pipeline's UNet through a LoRA.

    config: a `DDPOConfig`. pipe: an `AnimateDiffPipeline` whose scheduler is a DDIMScheduler; the trainer
    freezes it, moves it to accelerate's device and adds the LoRA to `pipe.unet` (so `pipe` itself samples
    from the current policy; a pipe that already has a LoRA is refused unless existing_lora="continue").
    reward_fn: `reward_fn(videos, prompts, metadata) -> (rewards [B], info)` with videos float
    [B, F, C, H, W] in [0, 1] (e.g. `VideoScoreReward.as_reward_fn()`, `multi_reward`); info entries that are
    [B] tensors are logged as "reward/<name>" means and "reward_std/<name>". prompts: the prompts to draw
    from (uniformly, seeded); repeat a few prompts rather than many once, the stat tracker needs repeats.
    eval_prompts: held-out prompts for `config.eval_every`. Run it with `train()`; under `accelerate launch`
    each process samples its own batches.
    """

    denoiser_names = ("unet",)

    def __init__(self, config: DDPOConfig, pipe: AnimateDiffPipeline, reward_fn: RewardFn, prompts: Sequence[str],
                 eval_prompts: Sequence[str] | None = None):
        if not isinstance(config, DDPOConfig):
            raise TypeError(f"config must be a DDPOConfig, got {type(config).__name__}.")
        if not isinstance(pipe.scheduler, DDIMScheduler):
            raise TypeError(f"DDPOTrainer samples with DDIM; pipe.scheduler is a {type(pipe.scheduler).__name__}. "
                            "Set pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config).")
        if config.advantages == "per_aspect" and getattr(reward_fn, "weights", None) is None:
            raise ValueError("advantages='per_aspect' needs a reward_fn with aspect weights and info['scores'], "
                             "such as VideoScoreReward.as_reward_fn().")
        pipe.scheduler.set_timesteps(config.sample_num_steps)
        stds = [ddim_step_std(pipe.scheduler, t, config.sample_eta) for t in pipe.scheduler.timesteps]
        # A zero-variance step (set_alpha_to_one=True at the end) has no log-probability to train on.
        self._trainable_steps = [j for j, std in enumerate(stds) if std > 0]
        self.stat_tracker = PerPromptStatTracker(config.tracker_buffer_size, config.tracker_min_count)
        super().__init__(config, pipe, reward_fn, prompts, eval_prompts)

    @property
    def unet(self) -> torch.nn.Module:
        """The UNet as accelerate prepared it (what training calls)."""
        return self.models["unet"]

    def _lora_config(self, name: str) -> LoraConfig:
        config = self.config
        return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                          target_modules=DDPO_LORA_TARGETS[config.lora_target])

    def _extra_state(self) -> list:
        return [self.stat_tracker]

    def _save_lora_files(self, directory: str, layers: dict, metadata: dict) -> None:
        AnimateDiffPipeline.save_lora_weights(directory, unet_lora_layers=layers["unet"],
                                              unet_lora_adapter_metadata=metadata["unet"])

    def _eval_kwargs(self) -> dict:
        config = self.config
        return dict(num_frames=config.num_frames, height=config.height, width=config.width,
                    num_inference_steps=config.eval_num_steps or config.sample_num_steps,
                    guidance_scale=config.sample_guidance_scale, negative_prompt=config.negative_prompt, eta=0.0)

    # -- sampling and advantages ---------------------------------------------------------------------------

    def sample_epoch(self) -> tuple[Trajectories, torch.Tensor, dict[str, torch.Tensor]]:
        """Sample and score one epoch's batches on this process: (trajectories, rewards float32 [N], info)."""
        config, device = self.config, self.accelerator.device
        prompt_generator, noise_generator = self._generator(stream=0), self._generator(stream=2, device=device)
        batches, scored = [], []
        for _ in range(config.sample_num_batches_per_epoch):
            count, latents = config.sample_batch_size, None
            if config.sample_shared_initial_noise:
                prompts = self._draw_prompts(1, prompt_generator) * count
                latents = self.pipe.prepare_latents(1, self.pipe.unet.config.in_channels, config.num_frames, config.height,
                                                    config.width, self.pipe.unet.dtype, device,
                                                    noise_generator).repeat(count, 1, 1, 1, 1)
            else:
                prompts = self._draw_prompts(count, prompt_generator)
            with self.accelerator.autocast():
                batch = sample_with_logprobs(
                    self.pipe, prompts, num_frames=config.num_frames,
                    height=config.height, width=config.width, num_inference_steps=config.sample_num_steps,
                    guidance_scale=config.sample_guidance_scale, eta=config.sample_eta,
                    negative_prompt=config.negative_prompt, generator=noise_generator, latents=latents,
                )
            batch.trainable = torch.zeros_like(batch.log_probs, dtype=torch.bool)
            batch.trainable[:, self._trainable_steps] = True
            batches.append(batch)
            scored.append(self._submit(batch.videos, batch.prompts))
        rewards, info = self._collect(scored)
        return Trajectories.cat(batches), rewards, info

    def _draw_prompts(self, count: int, generator: torch.Generator) -> list[str]:
        picks = torch.randint(len(self.prompts), (count,), generator=generator)
        return [self.prompts[i] for i in picks.tolist()]

    def compute_advantages(self, trajectories: Trajectories, rewards: torch.Tensor,
                           info: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Advantages float32 [N] for this process's samples, computed over all processes' samples, and the
        stat tracker's statistics to log."""
        from accelerate.utils import gather_object

        accelerator, config = self.accelerator, self.config
        all_prompts = gather_object(trajectories.prompts)
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
        logs = {}
        if config.advantages != "batch":
            counts = [s["count"] for s in self.stat_tracker.stats().values()]
            logs = {"tracker/prompts": float(len(counts)), "tracker/mean_count": float(np.mean(counts))}
        return values[accelerator.process_index].to(accelerator.device), logs

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
        config = self.config
        self.pipe.scheduler.set_timesteps(config.sample_num_steps, device=self.accelerator.device)
        if config.objective == "rwr":
            advantages = rwr_weights(advantages.clamp(-config.train_adv_clip_max, config.train_adv_clip_max),
                                     config.rwr_temperature)
        return super().train_on(trajectories, advantages)

    def _unit_loss(self, trajectories, index, step, advantages):
        config = self.config
        log_prob = self.log_probs(trajectories, index, step)
        if config.objective == "ddpo":
            return ppo_clipped_loss(log_prob, trajectories.log_probs[index, step], advantages[index],
                                    config.train_clip_range, config.train_adv_clip_max)
        return rwr_loss(log_prob, advantages[index]), {}
