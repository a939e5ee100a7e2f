"""`RewardCallback`: score the clean-video estimate while a diffusers video pipeline samples."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers.callbacks import PipelineCallback

from ...reward import BaseReward, RewardOutput
from ...reward.base import check_count
from .._diffusion import SUPPORTED_SCHEDULERS, scheduler_x0
from .decode import decode_video, pipeline_family
from .output import expand_prompts


@dataclass
class StepReward:
    """The reward at one denoising step.

    step_index: the step (0-based) after which the video was scored; timestep: that step's timestep
    (a float for flow-matching schedulers). final=False: the video is the clean estimate x0 from the
    model output at `timestep`; final=True (the last step): the pipeline's final latents, decoded, which
    is the video the pipeline returns.
    """

    step_index: int
    timestep: float
    output: RewardOutput
    final: bool


@dataclass
class _Step:
    model_output: torch.Tensor
    timestep: torch.Tensor | float
    sample: torch.Tensor
    step_index: int | None


class _StepCapture:
    """Records what the pipeline hands to `scheduler.step` (the guided model output and x_t), and LTX's
    latent grid from its transformer's keyword arguments.

    Why wrap `scheduler.step`: at that call the pipeline has done everything model-specific (CFG with
    its own scale and rescale, Wan 2.2's expert switch, CogVideoX's dynamic CFG, image conditioning),
    and what remains is the scheduler's arithmetic. Every scheduler sees it, whether or not it
    computes an x0 of its own (FlowMatchEuler does not, and pipelines drop DDIM's with return_dict=False),
    and no denoiser runs twice. The wrapper is an instance attribute of this scheduler only;
    `remove()` restores the class's method.
    """

    def __init__(self, pipeline):
        self.scheduler = pipeline.scheduler
        self.last: _Step | None = None
        self._had_own_step = "step" in vars(self.scheduler)
        original = self.scheduler.step
        signature = inspect.signature(original)
        owner = weakref.ref(self)  # a dropped callback leaves a pass-through wrapper, not a leak

        @functools.wraps(original)
        def step(*args, **kwargs):
            result = original(*args, **kwargs)
            capture = owner()
            if capture is not None:
                bound = signature.bind(*args, **kwargs).arguments
                index = getattr(capture.scheduler, "step_index", None)  # advanced by this step
                capture.last = _Step(bound["model_output"], bound["timestep"], bound["sample"],
                                     None if index is None else index - 1)
            return result

        self._original, self._wrapper = original, step
        self.scheduler.step = step
        self.latent_grid: tuple[int, int, int] | None = None
        self._hook = None
        if pipeline_family(pipeline) == "ltx":
            def record_grid(module, args, kwargs):
                capture = owner()
                if capture is not None:
                    capture.latent_grid = (kwargs["num_frames"], kwargs["height"], kwargs["width"])

            self._hook = pipeline.transformer.register_forward_pre_hook(record_grid, with_kwargs=True)

    def take(self, pipeline) -> _Step:
        if pipeline.scheduler is not self.scheduler:
            raise ValueError(
                "The pipeline's scheduler changed after its RewardCallback was made: make the callback after "
                "setting pipe.scheduler."
            )
        if self.last is None:
            raise RuntimeError("RewardCallback saw no scheduler.step in this denoising step.")
        step, self.last = self.last, None
        return step

    def remove(self) -> None:
        if self.scheduler.step is self._wrapper:
            if self._had_own_step:
                self.scheduler.step = self._original
            else:
                del self.scheduler.step
        if self._hook is not None:
            self._hook.remove()


class RewardCallback(PipelineCallback):
    """Score the pipeline's clean-video estimate every `every` steps, for `callback_on_step_end`.

        callback = RewardCallback(pipe, reward, prompts, every=5, threshold=0.3)
        video = pipe(prompts, callback_on_step_end=callback).frames
        callback.history          # [StepReward(step_index, timestep, output, final), ...]

    At a scored step the callback takes the (guided) model output and sample that the pipeline just
    handed to `scheduler.step`, forms the clean estimate x0 at the scheduler's own noise level
    (`alphas_cumprod[t]` or `sigmas[step]`; flow matching: x0 = x_t - sigma_t * v), decodes it as the
    pipeline decodes, and scores it. It adds no denoiser call. At the last step it scores the final
    latents instead, so the last entry is the reward of the returned video. Works with every pipeline
    in `decode.FAMILIES` and every scheduler in `SUPPORTED_SCHEDULERS`.

    pipeline: the pipeline the callback will be passed to; its scheduler's `step` is wrapped from now
    until `remove()` (set `pipe.scheduler` before making the callback).
    prompts: the prompts of the call (expanded for num_videos_per_prompt).
    cutoff_step_ratio / cutoff_step_index: as diffusers' callbacks, the step after which the callback
    stops acting: steps 0..cutoff are scored, later steps are not (default: all steps).
    threshold: interrupt the pipeline (diffusers' `_interrupt`) once every video's reward is below it.
    The pipeline then returns its noisy latents decoded; `stopped_early`, `stopped_at_step` and `video`
    (the last scored clean estimate) say what happened and keep the useful video.

    History is reset at the start of every pipeline call (step 0): it always describes the last call.
    The callback returns `callback_kwargs` unchanged, so it composes with `MultiPipelineCallbacks`.
    """

    tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(
        self,
        pipeline,
        reward: BaseReward,
        prompts: str | Sequence[str],
        *,
        every: int = 1,
        threshold: float | None = None,
        cutoff_step_ratio: float | None = None,
        cutoff_step_index: int | None = None,
    ):
        if cutoff_step_ratio is None and cutoff_step_index is None:
            cutoff_step_ratio = 1.0  # every step; diffusers' default, which one cutoff_step_index replaces
        super().__init__(cutoff_step_ratio=cutoff_step_ratio, cutoff_step_index=cutoff_step_index)
        self.every = check_count("every", every)
        self.family = pipeline_family(pipeline)
        scheduler = type(pipeline.scheduler).__name__
        if scheduler not in SUPPORTED_SCHEDULERS:
            raise ValueError(f"RewardCallback does not support {scheduler}: use one of {', '.join(SUPPORTED_SCHEDULERS)}.")
        self.reward = reward
        self.prompts = prompts
        self.threshold = None if threshold is None else float(threshold)
        self.history: list[StepReward] = []
        self.video: torch.Tensor | None = None
        """The last scored video: float [B, F, C, H, W] in [0, 1]."""
        self.stopped_early = False
        self.stopped_at_step: int | None = None
        self._capture = _StepCapture(pipeline)

    def remove(self) -> None:
        """Restore the scheduler's own `step` (and drop LTX's transformer hook)."""
        self._capture.remove()

    def _cutoff_step(self, pipeline) -> int:
        if self.config.cutoff_step_index is not None:
            return self.config.cutoff_step_index
        return int(pipeline.num_timesteps * self.config.cutoff_step_ratio)

    @torch.no_grad()
    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        if step_index == 0:
            self.history, self.video, self.stopped_early, self.stopped_at_step = [], None, False, None
        step = self._capture.take(pipeline)
        last = step_index == pipeline.num_timesteps - 1
        if step_index > self._cutoff_step(pipeline) or (not last and (step_index + 1) % self.every):
            return callback_kwargs
        if last:
            latents = callback_kwargs["latents"]
        else:
            x0 = scheduler_x0(pipeline.scheduler, step.model_output, step.timestep, step.sample, step.step_index)
            latents = x0.to(step.sample.dtype)
        frames = decode_video(pipeline, latents, prompt_embeds=callback_kwargs.get("prompt_embeds"),
                              latent_grid=self._capture.latent_grid)
        output = self.reward(frames, expand_prompts(self.prompts, len(frames)))
        self.history.append(StepReward(step_index, float(timestep), output, final=last))
        self.video = frames
        if self.threshold is not None and not last and bool((output.rewards < self.threshold).all()):
            pipeline._interrupt = True
            self.stopped_early, self.stopped_at_step = True, step_index
        return callback_kwargs
