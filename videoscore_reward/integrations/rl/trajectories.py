"""What sampling records for training: the latents of every step and each step's log-probability."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Trajectories:
    """Sampled videos with what training needs to recompute their log-probabilities.

    latents: [B, S + 1, C, F, h, w], x_T first, x_0 last; log_probs: float32 [B, S] (0 at deterministic
    steps); timesteps: [S] (the scheduler's); prompt_embeds / negative_prompt_embeds: [B, L, D] (negative is
    None without guidance); videos: float32 [B, F, C, H, W] in [0, 1] (what the pipeline returns with
    output_type="pt"); trainable: bool [B, S], the stochastic steps that have a log-probability to train on
    (None: every step with a nonzero log-probability); group_ids: long [B], the group of each video (GRPO) or None.
    """

    prompts: list[str]
    latents: torch.Tensor
    log_probs: torch.Tensor
    timesteps: torch.Tensor
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None
    videos: torch.Tensor
    trainable: torch.Tensor | None = None
    group_ids: torch.Tensor | None = None

    @classmethod
    def cat(cls, parts: list["Trajectories"]) -> "Trajectories":
        def joined(name: str):
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)

        return cls(
            prompts=[prompt for p in parts for prompt in p.prompts],
            latents=torch.cat([p.latents for p in parts]),
            log_probs=torch.cat([p.log_probs for p in parts]),
            timesteps=parts[0].timesteps,
            prompt_embeds=torch.cat([p.prompt_embeds for p in parts]),
            negative_prompt_embeds=joined("negative_prompt_embeds"),
            videos=torch.cat([p.videos for p in parts]),
            trainable=joined("trainable"),
            group_ids=joined("group_ids"),
        )
