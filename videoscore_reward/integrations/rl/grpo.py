"""GRPO for flow-matching video pipelines (Wan 2.1 / 2.2) with LoRA (Flow-GRPO, arXiv 2505.05470; DanceGRPO,
arXiv 2505.07818).

One epoch: for each sampling batch, draw prompts (the same on every process), give each G videos (a group,
optionally sharing its initial noise), and sample them through the flow SDE, stochastic only inside a window
of steps drawn per batch (the other steps are ODE steps); score them (in a worker thread while the next batch
is sampled); gather rewards across processes and normalise them within each group (per aspect and then
weighted, if asked); then for random subsets of the SDE steps recompute each step's log-probability under
the current LoRA and minimise the PPO clipped objective, plus an optional closed-form KL to the reference
policy (the LoRA disabled). Only the LoRA trains; checkpoints are diffusers LoRA files that
`WanPipeline.load_lora_weights` reads, plus the training state that `resume_from` continues from.

Needs the `train` extra (from a checkout: `pip install -e ".[train]"`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from ...extras import require

require("train", "videoscore_reward.integrations.rl.grpo")  # one clear line before diffusers/peft imports fail

from diffusers import WanPipeline  # noqa: E402
from peft import LoraConfig  # noqa: E402

from ._trainer import LoRATrainerBase
from .advantages import group_advantages
from .config import GRPOConfig
from .flow_sde import FlowStep
from .losses import gaussian_kl, ppo_clipped_loss
from .rewards import RewardFn
from .trajectories import Trajectories
from .wan import WanStepper, expert_name, sample_wan_with_logprobs

TRANSFORMER_2_WEIGHT_NAME = "pytorch_lora_weights_transformer_2.safetensors"
"""The file of Wan 2.2's low-noise expert LoRA: `pipe.load_lora_weights(dir, weight_name=...,
load_into_transformer_2=True)`."""


class GRPOTrainer(LoRATrainerBase):
    """GRPO fine-tuning of a WanPipeline's transformer(s) through a LoRA.

    config: a `GRPOConfig`. pipe: a `WanPipeline` (Wan 2.1, or 2.2 with `transformer_2` and `boundary_ratio`)
    with a flow-matching scheduler (Wan's UniPC with flow sigmas, or FlowMatchEulerDiscreteScheduler); the
    trainer freezes it, moves it to accelerate's device and adds a LoRA to the transformer(s) named by
    `config.lora_experts` (a pipe that already has one is refused unless existing_lora="continue").
    reward_fn: `reward_fn(videos, prompts, metadata) -> (rewards [B], info)`, videos float [B, F, C, H, W] in
    [0, 1] (e.g. `VideoScoreReward.as_reward_fn()`); each [B] entry of info is logged as "reward/<name>" and
    "reward_std/<name>". prompts: drawn uniformly (seeded, the same on every process). eval_prompts:
    held-out prompts for `config.eval_every`. `train()` returns one stats dict per epoch.
    """

    def __init__(self, config: GRPOConfig, pipe: WanPipeline, reward_fn: RewardFn, prompts: Sequence[str],
                 eval_prompts: Sequence[str] | None = None):
        if not isinstance(config, GRPOConfig):
            raise TypeError(f"config must be a GRPOConfig, got {type(config).__name__}.")
        if not isinstance(pipe, WanPipeline):
            raise TypeError(f"GRPOTrainer trains a WanPipeline, got {type(pipe).__name__}.")
        if config.advantages == "per_aspect" and getattr(reward_fn, "weights", None) is None:
            raise ValueError("advantages='per_aspect' needs a reward_fn with aspect weights and info['scores'], "
                             "such as VideoScoreReward.as_reward_fn().")
        self._check_video_size(pipe, config)
        two = pipe.transformer_2 is not None and pipe.config.get("boundary_ratio") is not None
        experts = {"both": ("transformer", "transformer_2"), "high": ("transformer",), "low": ("transformer_2",)}
        self.denoiser_names = experts[config.lora_experts] if two else ("transformer",)
        if pipe.transformer is None and "transformer" in self.denoiser_names:
            raise ValueError("pipe.transformer is None (Wan 2.2 A14B with boundary_ratio=1.0): use lora_experts='low'.")
        super().__init__(config, pipe, reward_fn, prompts, eval_prompts)
        processes = self.accelerator.num_processes
        if (config.sample_batch_size * processes) % config.group_size:
            raise ValueError(f"sample_batch_size x processes ({config.sample_batch_size} x {processes}) must be a "
                             f"multiple of group_size ({config.group_size}): every sampling batch holds whole groups.")
        self.stepper = WanStepper(pipe, config.sample_num_steps, config.sample_guidance_scale,
                                  config.sample_guidance_scale_2, config.sample_noise_level, self.accelerator.device,
                                  models=self.models)

    @staticmethod
    def _check_video_size(pipe, config: GRPOConfig) -> None:
        # The pipeline only warns and rounds; recorded trajectories must have exactly the asked size.
        temporal, spatial = pipe.vae_scale_factor_temporal, pipe.vae_scale_factor_spatial
        patch = (pipe.transformer or pipe.transformer_2).config.patch_size
        if (config.num_frames - 1) % temporal:
            raise ValueError(f"num_frames - 1 must be a multiple of {temporal} for Wan, got num_frames={config.num_frames}.")
        for name, multiple in (("height", spatial * patch[1]), ("width", spatial * patch[2])):
            if getattr(config, name) % multiple:
                raise ValueError(f"{name} must be a multiple of {multiple} for this Wan pipeline, got {getattr(config, name)}.")

    def _lora_config(self, name: str) -> LoraConfig:
        config = self.config
        targets = [t.strip() for t in config.lora_target_modules.split(",") if t.strip()]
        return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                          init_lora_weights="gaussian", target_modules=targets)

    def _save_lora_files(self, directory: str, layers: dict, metadata: dict) -> None:
        """Wan 2.1 / the high-noise expert: `pipe.load_lora_weights(directory)`; Wan 2.2's low-noise expert:
        `pipe.load_lora_weights(directory, weight_name=TRANSFORMER_2_WEIGHT_NAME, load_into_transformer_2=True)`."""
        if "transformer" in layers:
            WanPipeline.save_lora_weights(directory, transformer_lora_layers=layers["transformer"],
                                          transformer_lora_adapter_metadata=metadata["transformer"])
        if "transformer_2" in layers:
            WanPipeline.save_lora_weights(directory, transformer_lora_layers=layers["transformer_2"],
                                          transformer_lora_adapter_metadata=metadata["transformer_2"],
                                          weight_name=TRANSFORMER_2_WEIGHT_NAME)

    def _eval_kwargs(self) -> dict:
        config = self.config
        kwargs = dict(num_frames=config.num_frames, height=config.height, width=config.width,
                      num_inference_steps=config.eval_num_steps or config.sample_num_steps,
                      guidance_scale=config.sample_guidance_scale, negative_prompt=config.negative_prompt,
                      max_sequence_length=config.max_sequence_length)
        if self.pipe.config.get("boundary_ratio") is not None:
            kwargs["guidance_scale_2"] = config.sample_guidance_scale_2
        return kwargs

    # -- sampling and advantages ---------------------------------------------------------------------------

    def _sample_kwargs(self) -> dict:
        config = self.config
        return dict(num_frames=config.num_frames, height=config.height, width=config.width,
                    num_inference_steps=config.sample_num_steps, guidance_scale=config.sample_guidance_scale,
                    guidance_scale_2=config.sample_guidance_scale_2, noise_level=config.sample_noise_level,
                    negative_prompt=config.negative_prompt, max_sequence_length=config.max_sequence_length)

    def _trained_steps(self, window: list[int]) -> list[int]:
        # A step whose expert carries no LoRA has nothing to train: sample it deterministically.
        return [j for j in window if expert_name(self.pipe, self.stepper.timesteps[j]) in self.models]

    def sample_epoch(self) -> tuple[Trajectories, torch.Tensor, dict[str, torch.Tensor]]:
        """Sample and score one epoch's groups on this process: (trajectories with group_ids, rewards float32
        [N], info). Prompts, windows and shared noise come from a generator that is the same on every process."""
        config, accelerator, pipe = self.config, self.accelerator, self.pipe
        shared, noise = self._generator(stream=0, shared=True), self._generator(stream=2, device=accelerator.device)
        processes, rank, size = accelerator.num_processes, accelerator.process_index, config.sample_batch_size
        groups_per_batch = size * processes // config.group_size
        mine = slice(rank * size, (rank + 1) * size)
        batches, scored = [], []
        for b in range(config.sample_num_batches_per_epoch):
            picks = torch.randint(len(self.prompts), (groups_per_batch,), generator=shared).tolist()
            prompts = [self.prompts[i] for i in picks for _ in range(config.group_size)][mine]
            group_ids = (b * groups_per_batch + torch.arange(groups_per_batch)).repeat_interleave(config.group_size)[mine]
            low, high = config.sde_window_range
            if config.sde_window_size:
                start = int(torch.randint(low, high - config.sde_window_size + 1, (1,), generator=shared))
                window = list(range(start, start + config.sde_window_size))
            else:
                window = list(range(config.sample_num_steps))
            latents = None
            if config.group_shared_noise:
                channels = (pipe.transformer or pipe.transformer_2).config.in_channels
                starts = pipe.prepare_latents(groups_per_batch, channels, config.height, config.width, config.num_frames,
                                              torch.float32, "cpu", shared)
                latents = starts.repeat_interleave(config.group_size, dim=0)[mine].to(accelerator.device)
            with accelerator.autocast():
                batch = sample_wan_with_logprobs(pipe, prompts, sde_steps=self._trained_steps(window), generator=noise,
                                                 latents=latents, **self._sample_kwargs())
            batch.group_ids = group_ids.to(batch.latents.device)
            batches.append(batch)
            scored.append(self._submit(batch.videos, batch.prompts))
        rewards, info = self._collect(scored)
        return Trajectories.cat(batches), rewards, info

    def compute_advantages(self, trajectories: Trajectories, rewards: torch.Tensor,
                           info: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Group advantages float32 [N] for this process's samples: rewards (or, per aspect, info["scores"])
        and group ids are gathered over all processes first, so a group may span processes. Also returns
        group statistics to log: the mean within-group reward std and the fraction of groups with std 0."""
        accelerator, config = self.accelerator, self.config
        gather = lambda t: accelerator.gather(t.to(accelerator.device)).cpu()  # noqa: E731
        all_rewards, all_groups = gather(rewards), gather(trajectories.group_ids).numpy()
        if config.advantages == "per_aspect":
            values = group_advantages(gather(info["scores"]), all_groups, self.reward_fn.weights, config.advantage_eps)
        else:
            values = group_advantages(all_rewards, all_groups, eps=config.advantage_eps)
        stds = np.array([all_rewards[all_groups == g].std(correction=0).item() for g in np.unique(all_groups)])
        logs = {"groups/reward_std": float(stds.mean()), "groups/zero_std_fraction": float((stds == 0).mean())}
        values = torch.as_tensor(values, dtype=torch.float32).reshape(accelerator.num_processes, -1)
        return values[accelerator.process_index].to(accelerator.device), logs

    # -- training ------------------------------------------------------------------------------------------

    def step_log_prob(self, trajectories: Trajectories, index: torch.Tensor, step: int) -> FlowStep:
        """Recompute recorded step `step` of samples `index` under the current policy: its mean, std and the
        log-probability float32 [len(index)] of the recorded next latent."""
        negative = trajectories.negative_prompt_embeds
        with self.accelerator.autocast():
            return self.stepper(step, trajectories.latents[index, step], trajectories.prompt_embeds[index],
                                None if negative is None else negative[index], stochastic=True,
                                prev_sample=trajectories.latents[index, step + 1])

    @contextlib.contextmanager
    def reference_policy(self):
        """The LoRA disabled on every trained expert: the reference policy of the KL term."""
        models = [self.accelerator.unwrap_model(m) for m in self.models.values()]
        for model in models:
            model.disable_adapters()
        try:
            yield
        finally:
            for model in models:
                model.enable_adapters()

    def _unit_loss(self, trajectories, index, step, advantages):
        config = self.config
        current = self.step_log_prob(trajectories, index, step)
        loss, stats = ppo_clipped_loss(current.log_prob, trajectories.log_probs[index, step], advantages[index],
                                       config.train_clip_range, config.train_adv_clip_max)
        if config.kl_beta > 0:
            with torch.no_grad(), self.reference_policy():
                reference = self.step_log_prob(trajectories, index, step)
            kl = gaussian_kl(current.mean, reference.mean, current.std).mean()
            loss = loss + config.kl_beta * kl
            stats["kl"] = kl.detach()
        return loss, stats
