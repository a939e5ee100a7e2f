"""diffusers integration: score text-to-video pipeline output, best-of-N reranking, a step callback.

Needs the `diffusers` extra: `pip install videoscore-reward[diffusers]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

try:
    from diffusers.callbacks import PipelineCallback
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "videoscore_reward.integrations.diffusers needs diffusers: pip install 'videoscore-reward[diffusers]'"
    ) from error

from ..reward import RewardOutput, VideoScoreReward


def pipeline_frames(frames) -> torch.Tensor | list[torch.Tensor]:
    """What a text-to-video pipeline returns (`output.frames`), as input for `VideoScoreReward`.

    output_type="pt": float [B, F, C, H, W] in [0, 1], returned as is (no device round trip);
    "np": float [B, F, H, W, C] in [0, 1] -> tensor [B, F, C, H, W];
    "pil": a list (per video) of lists of PIL images -> list of uint8 [F, 3, H, W].
    """
    if isinstance(frames, torch.Tensor):
        return frames
    if isinstance(frames, np.ndarray):
        if frames.ndim != 5:
            raise ValueError(f"np pipeline output must be [B, F, H, W, C], got shape {frames.shape}.")
        return torch.from_numpy(frames).permute(0, 1, 4, 2, 3)
    if isinstance(frames, Sequence) and not isinstance(frames, str) and frames and isinstance(frames[0], Sequence):
        return [torch.from_numpy(np.stack([np.asarray(im.convert("RGB")) for im in video])).permute(0, 3, 1, 2) for video in frames]
    raise TypeError(
        f"Expected pipeline frames as a tensor [B, F, C, H, W], an array [B, F, H, W, C] or lists of PIL images, "
        f"got {type(frames).__name__}."
    )


def score_pipeline_output(reward: VideoScoreReward, output, prompts: str | Sequence[str]) -> RewardOutput:
    """Score what a diffusers text-to-video pipeline returned (the output object or its `.frames`)."""
    frames = getattr(output, "frames", output)
    return reward(pipeline_frames(frames), prompts)


@dataclass
class Candidate:
    seed: int
    reward: float
    scores: list[float]


@dataclass
class BestOfN:
    """The winner among the candidates of one prompt.

    video: float [F, C, H, W] in [0, 1] (the pipeline's "pt" output); candidates: every candidate,
    best first (higher reward, then lower seed).
    """

    prompt: str
    video: torch.Tensor
    seed: int
    reward: float
    candidates: list[Candidate] = field(default_factory=list)


def best_of_n(
    pipe,
    prompt: str | Sequence[str],
    n: int,
    reward: VideoScoreReward,
    *,
    seeds: Sequence[int] | None = None,
    chunk_size: int = 4,
    **pipe_kwargs,
) -> list[BestOfN]:
    """Generate `n` candidates per prompt, score them, keep the best.

    Candidate k of every prompt uses `seeds[k]` (default 0..n-1) through its own torch.Generator,
    so a winner is reproduced by generating its prompt with its seed alone. Generation runs in
    chunks of at most `chunk_size` videos and only the best video per prompt is kept, so memory
    stays bounded. Ties go to the lower seed. `pipe_kwargs` go to the pipeline (num_frames,
    num_inference_steps, guidance_scale, ...); output_type is "pt".
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n or len(set(seeds)) != n:
        raise ValueError(f"seeds must be {n} distinct integers, got {seeds}.")
    if "output_type" in pipe_kwargs or "generator" in pipe_kwargs:
        raise ValueError("best_of_n sets output_type and generator itself; do not pass them.")
    if pipe_kwargs.get("num_videos_per_prompt", 1) != 1:
        raise ValueError(f"n is the number of candidates per prompt; got num_videos_per_prompt={pipe_kwargs['num_videos_per_prompt']}.")

    jobs = [(p, seed) for p in range(len(prompts)) for seed in seeds]
    candidates: list[list[Candidate]] = [[] for _ in prompts]
    best: list[tuple[float, int, torch.Tensor] | None] = [None] * len(prompts)
    generator_device = getattr(pipe, "device", torch.device("cpu"))
    for start in range(0, len(jobs), chunk_size):
        chunk = jobs[start : start + chunk_size]
        frames = pipe(
            prompt=[prompts[p] for p, _ in chunk],
            generator=[torch.Generator(generator_device).manual_seed(seed) for _, seed in chunk],
            output_type="pt",
            **pipe_kwargs,
        ).frames
        scored = reward(frames, [prompts[p] for p, _ in chunk])
        for (p, seed), video, value, scores in zip(chunk, frames, scored.rewards.tolist(), scored.scores.tolist()):
            candidates[p].append(Candidate(seed, value, scores))
            if best[p] is None or (value, -seed) > (best[p][0], -best[p][1]):
                best[p] = (value, seed, video.clone())  # a view would keep the whole chunk alive
    results = []
    for p, text in enumerate(prompts):
        value, seed, video = best[p]
        ranked = sorted(candidates[p], key=lambda c: (-c.reward, c.seed))
        results.append(BestOfN(prompt=text, video=video, seed=seed, reward=value, candidates=ranked))
    return results


@dataclass
class StepReward:
    step_index: int
    timestep: int
    output: RewardOutput


class RewardCallback(PipelineCallback):
    """Score the pipeline's current clean-video estimate every `every` steps (`callback_on_step_end`).

    At a chosen step the latents x_t just produced by the scheduler are turned into the estimate
    x0 = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t) with one more UNet evaluation at the next timestep
    (with the pipeline's classifier-free guidance), decoded through the VAE and scored; at the last
    step the latents are already clean. Results go to `self.history` as `StepReward`s. With a
    `threshold`, the pipeline is interrupted once every sample's reward is below it. The callback
    returns `callback_kwargs` unchanged, so it composes with `MultiPipelineCallbacks`.
    """

    tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(self, reward: VideoScoreReward, prompts: str | Sequence[str], every: int = 1, threshold: float | None = None):
        super().__init__(cutoff_step_ratio=1.0)
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.reward = reward
        self.prompts = prompts
        self.every = every
        self.threshold = threshold
        self.history: list[StepReward] = []

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        timesteps = pipeline.scheduler.timesteps
        last = step_index == len(timesteps) - 1
        if not last and (step_index + 1) % self.every:
            return callback_kwargs
        latents = callback_kwargs["latents"]
        clean = latents if last else self._clean_estimate(pipeline, latents, timesteps[step_index + 1], callback_kwargs["prompt_embeds"])
        video = pipeline.decode_latents(clean)  # float [B, C, F, H, W] in about [-1, 1]
        output = self.reward(video.clamp(-1, 1), self.prompts, value_range=(-1, 1), layout="BCTHW")
        self.history.append(StepReward(step_index, int(timestep), output))
        if self.threshold is not None and bool((output.rewards < self.threshold).all()):
            pipeline._interrupt = True
        return callback_kwargs

    @staticmethod
    def _clean_estimate(pipeline, latents, timestep, prompt_embeds):
        guided = pipeline.do_classifier_free_guidance
        model_input = torch.cat([latents] * 2) if guided else latents
        model_input = pipeline.scheduler.scale_model_input(model_input, timestep)
        prediction = pipeline.unet(
            model_input, timestep, encoder_hidden_states=prompt_embeds,
            cross_attention_kwargs=getattr(pipeline, "cross_attention_kwargs", None),  # a LoRA scale, as the pipeline uses it
        ).sample
        if guided:
            uncond, cond = prediction.chunk(2)
            prediction = uncond + pipeline.guidance_scale * (cond - uncond)
        alpha = pipeline.scheduler.alphas_cumprod.to(latents.device)[timestep].to(latents.dtype)
        kind = pipeline.scheduler.config.prediction_type
        if kind == "epsilon":
            return (latents - (1 - alpha).sqrt() * prediction) / alpha.sqrt()
        if kind == "v_prediction":
            return alpha.sqrt() * latents - (1 - alpha).sqrt() * prediction
        if kind == "sample":
            return prediction
        raise ValueError(f"Unknown scheduler prediction_type {kind!r}: expected 'epsilon', 'v_prediction' or 'sample'.")
