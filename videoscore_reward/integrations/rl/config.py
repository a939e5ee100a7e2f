"""Configuration of the RL trainers: `DDPOConfig` (AnimateDiff, DDIM) and `GRPOConfig` (flow matching, Wan).

Plain dataclasses that import neither diffusers nor peft, so scripts can build their command line from them
(`transformers.HfArgumentParser(GRPOConfig)`) before the heavy imports. Every knob has a default and a
docstring line; the values are checked at construction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

DDPO_LORA_TARGETS = {
    "motion": r".*motion_modules.*\.(to_q|to_k|to_v|to_out\.0)",
    "spatial": r".*attentions.*\.(to_q|to_k|to_v|to_out\.0)",
    "both": r".*(motion_modules|attentions).*\.(to_q|to_k|to_v|to_out\.0)",
}


def _check_choices(config: Any, **allowed: tuple) -> None:
    for name, choices in allowed.items():
        value = getattr(config, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


@dataclass
class RLConfig:
    """The knobs both trainers share: run, sampling size, optimisation, LoRA, checkpoints and guards."""

    # Run
    num_epochs: int = 100
    """Epochs for `train()`: each samples, scores and trains once."""
    seed: int = 0
    """Seeds sampling noise, prompt draws and shuffling (the sampling noise is offset by the process index)."""
    project_dir: str = "rl-run"
    """Where checkpoints (`checkpoint-EPOCH/`), held-out eval videos and tracker files go."""
    log_with: str | None = None
    """accelerate trackers: "tensorboard", "wandb", "all"; a `GeneralTracker` or a list also works from Python.
    None logs nothing."""
    tracker_project_name: str = "videoscore-rl"
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """Frozen weights are cast to this dtype and forward passes autocast; LoRA weights stay float32."""
    save_every: int = 10
    """Every this many epochs write `checkpoint-EPOCH/`: the LoRA as diffusers LoRA files plus the full training
    state (optimizer, LR scheduler, EMA, RNG, stat tracker, epoch, step) for `resume_from`. 0: never."""
    resume_from: str | None = None
    """A `checkpoint-EPOCH/` folder to continue from exactly, or "latest" for the newest one in project_dir."""
    existing_lora: Literal["refuse", "continue"] = "refuse"
    """What to do with a pipe whose denoiser already carries a LoRA: refuse with an error, or train that LoRA
    (e.g. one loaded with `pipe.load_lora_weights`) instead of adding a fresh one."""

    # Sampling
    num_frames: int = 16
    height: int = 512
    width: int = 512
    sample_num_steps: int = 20
    """Denoising steps per sampled training video."""
    sample_guidance_scale: float = 7.5
    """Classifier-free guidance scale (<= 1 disables it)."""
    negative_prompt: str | None = None
    sample_batch_size: int = 1
    """Videos per sampling batch (per process)."""
    sample_num_batches_per_epoch: int = 4
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
    train_use_8bit_adam: bool = False
    """bitsandbytes' AdamW8bit (needs `pip install bitsandbytes` and a GPU); halves the optimizer memory."""
    train_max_grad_norm: float = 1.0
    train_num_inner_epochs: int = 1
    """Passes over each epoch's samples."""
    train_clip_range: float = 1e-4
    """PPO clip range on the importance ratio."""
    train_adv_clip_max: float = 5.0
    """Advantages are clipped to [-adv_clip_max, adv_clip_max]."""
    train_timestep_fraction: float = 1.0
    """Fraction of the trainable (stochastic) steps trained on per batch (a random subset)."""
    lr_scheduler: str = "constant"
    """diffusers' `get_scheduler` name: constant, constant_with_warmup, linear, cosine, ..."""
    lr_warmup_steps: int = 0
    """Optimizer steps of LR warm-up."""
    ema_decay: float = 0.0
    """Exponential moving average of the LoRA weights, used for held-out evals and LoRA checkpoints (0: off)."""
    gradient_checkpointing: bool = False
    """Recompute the denoiser's activations in the backward pass: far less memory, about 30% more time."""

    # LoRA
    lora_rank: int = 8
    lora_alpha: float | None = None
    """LoRA alpha; None uses the rank (scale 1)."""

    # Reward-hacking guards
    eval_every: int = 0
    """Every this many epochs (and before the first), sample the held-out prompts with the pipeline's own
    deterministic sampler and fixed seeds, score them, log "eval/<aspect>" and write an mp4 grid. 0: never."""
    eval_num_steps: int | None = None
    """Denoising steps of the held-out eval (None: sample_num_steps)."""
    eval_seed: int = 1234
    """Seed of the held-out samples: the same noise at every eval, so only the policy changes."""
    drift_margin: float | None = None
    """Stop training when a watched aspect's held-out mean falls more than this below its first eval value."""
    drift_aspects: str | None = None
    """Comma-separated aspects the drift guard watches; None: those with weight 0 in the reward function."""

    def _check_common(self) -> None:
        _check_choices(self, mixed_precision=("no", "fp16", "bf16"), existing_lora=("refuse", "continue"))
        positive = ("num_frames", "height", "width", "sample_num_steps", "sample_batch_size",
                    "sample_num_batches_per_epoch", "train_batch_size", "train_gradient_accumulation_steps",
                    "train_num_inner_epochs", "lora_rank")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 < self.train_timestep_fraction <= 1:
            raise ValueError(f"train_timestep_fraction must be in (0, 1], got {self.train_timestep_fraction}.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if self.drift_margin is not None and not self.eval_every:
            raise ValueError("drift_margin needs held-out evals: set eval_every >= 1.")

    def _check_batches(self, samples: int) -> None:
        per_step = self.train_batch_size * self.train_gradient_accumulation_steps
        if samples % per_step:
            raise ValueError(
                f"the samples per epoch and process ({samples}) must be a multiple of "
                f"train_batch_size * train_gradient_accumulation_steps ({per_step}), so every optimizer step is complete."
            )

    def to_flat_dict(self) -> dict[str, Any]:
        """The config for trackers, which accept scalars and strings only."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for k, v in values.items()}


@dataclass
class DDPOConfig(RLConfig):
    """Every knob of `DDPOTrainer`, with defaults for AnimateDiff (SD1.5) on one 80 GB GPU."""

    project_dir: str = "ddpo-animatediff"
    tracker_project_name: str = "ddpo-animatediff"

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
    sample_eta: float = 1.0
    """DDIM eta; must be > 0 so each step is a Gaussian with a log-probability."""
    sample_shared_initial_noise: bool = False
    """All videos of a sampling batch share one prompt and one initial noise x_T (as in DanceGRPO), so their
    reward differences come from the policy's steps alone, not from the luck of x_T; use with
    advantages="batch" and one sampling batch per epoch, or per-prompt advantages."""
    lora_target: Literal["motion", "spatial", "both"] = "motion"
    """Attention projections (to_q, to_k, to_v, to_out) of the motion modules, the spatial transformers, or both."""

    def __post_init__(self):
        self._check_common()
        _check_choices(self, objective=("ddpo", "rwr"), advantages=("per_prompt", "per_aspect", "batch"),
                       lora_target=tuple(DDPO_LORA_TARGETS))
        if not self.sample_eta > 0:
            raise ValueError(f"sample_eta must be > 0 (eta = 0 makes DDIM deterministic: no log-probability), got {self.sample_eta}.")
        self._check_batches(self.sample_batch_size * self.sample_num_batches_per_epoch)


@dataclass
class GRPOConfig(RLConfig):
    """Every knob of `GRPOTrainer`, with Flow-GRPO's Wan2.1-T2V-1.3B settings (240x416, 33 frames) as defaults."""

    project_dir: str = "grpo-wan"
    tracker_project_name: str = "grpo-wan"
    num_frames: int = 33
    height: int = 240
    width: int = 416
    sample_num_steps: int = 10
    """SDE/ODE steps per training video (fewer than at inference: the policy is trained at this resolution)."""
    sample_guidance_scale: float = 4.5
    sample_guidance_scale_2: float | None = None
    """Wan 2.2: the guidance of the low-noise expert (transformer_2); None: sample_guidance_scale."""
    max_sequence_length: int = 512
    """Text tokens of the prompt embedding (Wan's default 512)."""
    sample_batch_size: int = 4
    sample_num_batches_per_epoch: int = 4
    train_batch_size: int = 1
    train_gradient_accumulation_steps: int = 4
    train_learning_rate: float = 1e-4
    train_adam_weight_decay: float = 1e-4
    train_clip_range: float = 1e-3
    """PPO clip range on the per-step ratio (Flow-GRPO uses 1e-4 to 1e-3)."""

    # Groups and advantages
    group_size: int = 8
    """G: videos per prompt. The (sample_batch_size x processes) videos of a sampling batch hold whole groups
    of consecutive samples; a group may span processes (advantages are gathered before normalising)."""
    group_shared_noise: bool = False
    """The videos of a group share the initial noise x_T (DanceGRPO), so they differ only by the SDE's steps."""
    advantages: Literal["group", "per_aspect"] = "group"
    """"group": (r - mean_g) / std_g of the reward within the group; "per_aspect": each aspect of
    info["scores"] normalised within the group, then weighted by the reward function's weights (DanceGRPO)."""
    advantage_eps: float = 1e-4

    # The SDE
    sample_noise_level: float = 0.7
    """a in the SDE's diffusion coefficient a * sqrt(sigma / (1 - sigma)) (Flow-GRPO's noise_level)."""
    sde_window_size: int = 0
    """Stochastic (and trained) steps per sample; the others are deterministic ODE steps with nothing to train
    (Flow-GRPO-Fast / MixGRPO). 0: every step is stochastic."""
    sde_window_start: int = 0
    """First step the window may start at."""
    sde_window_end: int | None = None
    """One past the last step the window may cover (None: sample_num_steps); its start is drawn per batch."""

    # Objective
    kl_beta: float = 0.0
    """Weight of the KL to the reference policy (the LoRA disabled): for two Gaussians with the same std,
    KL = |mean - mean_ref|^2 / (2 std^2), averaged over elements. 0: off (and no reference pass)."""

    # LoRA
    lora_rank: int = 32
    lora_alpha: float | None = 64
    lora_target_modules: str = "to_q,to_k,to_v,to_out.0"
    """Comma-separated module names of the transformer blocks that get a LoRA (self- and cross-attention)."""
    lora_experts: Literal["both", "high", "low"] = "both"
    """Wan 2.2: LoRA on both experts, only the high-noise `transformer`, or only the low-noise `transformer_2`.
    Steps handled by an expert without a LoRA are not trained."""

    def __post_init__(self):
        self._check_common()
        _check_choices(self, advantages=("group", "per_aspect"), lora_experts=("both", "high", "low"))
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (advantages compare the videos of a group), got {self.group_size}.")
        if not self.sample_noise_level > 0:
            raise ValueError(f"sample_noise_level must be > 0 (0 makes every step deterministic), got {self.sample_noise_level}.")
        end = self.sample_num_steps if self.sde_window_end is None else self.sde_window_end
        if self.sde_window_size < 0 or not 0 <= self.sde_window_start < end <= self.sample_num_steps:
            raise ValueError(f"the SDE window range [sde_window_start, sde_window_end) = [{self.sde_window_start}, {end}) "
                             f"must lie within the {self.sample_num_steps} sampling steps, and sde_window_size must be >= 0.")
        if self.sde_window_size > end - self.sde_window_start:
            raise ValueError(f"sde_window_size ({self.sde_window_size}) does not fit in [{self.sde_window_start}, {end}).")
        if not self.lora_target_modules.strip():
            raise ValueError("lora_target_modules must name at least one module, e.g. 'to_q,to_k,to_v,to_out.0'.")
        self._check_batches(self.sample_batch_size * self.sample_num_batches_per_epoch)

    @property
    def sde_window_range(self) -> tuple[int, int]:
        return self.sde_window_start, self.sample_num_steps if self.sde_window_end is None else self.sde_window_end
