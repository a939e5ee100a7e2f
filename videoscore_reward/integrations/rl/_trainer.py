"""What the DDPO and GRPO trainers share: accelerate, the LoRA, optimizer, LR schedule, EMA, the optimizer
step over (samples x timesteps), reward scoring and logging, held-out evals, and checkpoints that resume a
run exactly. A trainer subclass supplies sampling, advantages and the per-step loss of its family."""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, gather_object, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel, cast_training_params
from safetensors.torch import load_file, save_file

from .config import RLConfig
from .evaluation import drift_guard_for, latest_checkpoint, write_video_grid
from .rewards import RewardFn
from .trajectories import Trajectories

_STATE_FILE = "lora_training_state.safetensors"


def _resolve(value):
    return value.result() if isinstance(value, Future) else value


class _Progress:
    """The counters a checkpoint must restore: epoch, optimizer step and why training stopped."""

    def __init__(self):
        self.epoch, self.global_step, self.stopped = 0, 0, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "global_step": self.global_step, "stopped": self.stopped}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.global_step, self.stopped = state["epoch"], state["global_step"], state["stopped"]


class LoRATrainerBase:
    """Shared trainer machinery (module docstring). Subclasses set `denoiser_names` and implement
    `_lora_config`, `_save_lora_files`, `sample_epoch`, `compute_advantages`, `_unit_loss` and `_eval_kwargs`."""

    denoiser_names: tuple[str, ...] = ()

    def __init__(self, config: RLConfig, pipe, reward_fn: RewardFn, prompts: Sequence[str],
                 eval_prompts: Sequence[str] | None = None):
        prompts = list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompts must be a non-empty list of strings.")
        self.config, self.pipe, self.reward_fn, self.prompts = config, pipe, reward_fn, prompts
        self.eval_prompts = list(eval_prompts or [])
        if config.eval_every and not self.eval_prompts:
            raise ValueError("eval_every needs held-out prompts: pass eval_prompts=[...] to the trainer.")
        self.accelerator = accelerator = Accelerator(
            mixed_precision=config.mixed_precision, log_with=config.log_with,
            project_config=ProjectConfiguration(project_dir=config.project_dir),
        )
        set_seed(config.seed, device_specific=True)
        self.dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.mixed_precision]
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False).eval()
        pipe.to(accelerator.device, self.dtype)
        pipe.set_progress_bar_config(disable=True)

        models = {name: getattr(pipe, name) for name in self.denoiser_names}
        for name, model in models.items():
            self._attach_lora(name, model)
            if config.gradient_checkpointing:
                model.enable_gradient_checkpointing()
        self.lora_parameters = [p for m in models.values() for p in m.parameters() if p.requires_grad]
        optimizer = self._make_optimizer()
        steps_per_epoch = self._optimizer_steps_per_epoch() * config.train_num_inner_epochs
        # accelerate steps a prepared scheduler once per process: count steps as it does.
        lr_scheduler = get_scheduler(config.lr_scheduler, optimizer,
                                     num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
                                     num_training_steps=config.num_epochs * steps_per_epoch * accelerator.num_processes)
        *prepared, self.optimizer, self.lr_scheduler = accelerator.prepare(*models.values(), optimizer, lr_scheduler)
        self.models = dict(zip(models, prepared))
        self.ema = EMAModel(self.lora_parameters, decay=config.ema_decay) if config.ema_decay else None
        self.progress = _Progress()
        self.drift_guard = drift_guard_for(config, reward_fn)
        for state in (self.progress, self.ema, self.drift_guard, *self._extra_state()):
            if state is not None:
                accelerator.register_for_checkpointing(state)
        accelerator.register_save_state_pre_hook(self._save_hook)
        accelerator.register_load_state_pre_hook(self._load_hook)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rl-reward") if config.async_reward else None
        if config.log_with is not None:
            accelerator.init_trackers(config.tracker_project_name, config=config.to_flat_dict())
        if config.resume_from:
            self.load_state(config.resume_from)

    # -- set-up --------------------------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.progress.epoch

    @property
    def global_step(self) -> int:
        return self.progress.global_step

    def _attach_lora(self, name: str, model: torch.nn.Module) -> None:
        existing = list(getattr(model, "peft_config", None) or {})
        if existing and self.config.existing_lora == "refuse":
            raise ValueError(
                f"pipe.{name} already carries a LoRA ({', '.join(existing)}). Adding a new one would silently start "
                "from zero; pass existing_lora='continue' to train the loaded LoRA, or give the trainer a pipe without one."
            )
        if existing:
            adapter = model.active_adapters()[0] if hasattr(model, "active_adapters") else existing[0]
            model.set_adapter(adapter)
            for parameter_name, parameter in model.named_parameters():
                parameter.requires_grad_(f".{adapter}." in parameter_name and "lora_" in parameter_name)
        else:
            model.add_adapter(self._lora_config(name))
        cast_training_params(model, dtype=torch.float32)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        optimizer_cls = torch.optim.AdamW
        if config.train_use_8bit_adam:
            try:
                import bitsandbytes as bnb
            except ImportError as error:
                raise ImportError("train_use_8bit_adam=True needs bitsandbytes: pip install bitsandbytes") from error
            optimizer_cls = bnb.optim.AdamW8bit
        return optimizer_cls(self.lora_parameters, lr=config.train_learning_rate,
                             betas=(config.train_adam_beta1, config.train_adam_beta2),
                             weight_decay=config.train_adam_weight_decay, eps=config.train_adam_epsilon)

    def _optimizer_steps_per_epoch(self) -> int:
        config = self.config
        samples = config.sample_batch_size * config.sample_num_batches_per_epoch
        return samples // (config.train_batch_size * config.train_gradient_accumulation_steps)

    def _extra_state(self) -> list:
        """Further objects with state_dict / load_state_dict that a checkpoint holds (e.g. a stat tracker)."""
        return []

    def _generator(self, stream: int, device: torch.device | str = "cpu", shared: bool = False) -> torch.Generator:
        """A generator seeded by (seed, epoch, stream[, process]): each epoch's randomness is a function of the
        epoch, so a resumed run draws what an uninterrupted one would. shared=True: the same on every process."""
        process = 0 if shared else self.accelerator.process_index + 1
        seed = int(np.random.SeedSequence([self.config.seed, self.epoch, stream, process]).generate_state(1)[0])
        return torch.Generator(device).manual_seed(seed)

    # -- rewards -------------------------------------------------------------------------------------------

    def _score(self, videos: torch.Tensor, prompts: list[str]):
        return self.reward_fn(videos, prompts, [{} for _ in prompts])

    def _submit(self, videos: torch.Tensor, prompts: list[str]):
        return self._executor.submit(self._score, videos, prompts) if self._executor else self._score(videos, prompts)

    @staticmethod
    def _collect(scored: list) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Wait for scored batches: rewards float32 [N] and the tensor entries of info, concatenated."""
        rewards, infos = [], []
        for result in scored:
            batch_rewards, info = (_resolve(x) for x in _resolve(result))
            rewards.append(torch.as_tensor(batch_rewards, dtype=torch.float32).detach().cpu().reshape(-1))
            infos.append({k: v.detach().float().cpu() for k, v in (info or {}).items() if isinstance(v, torch.Tensor)})
        return torch.cat(rewards), {k: torch.cat([i[k] for i in infos]) for k in infos[0]}

    def _reward_logs(self, prefix: str, rewards: torch.Tensor, info: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean and std over all processes of the reward and of every per-sample [N] entry of info."""
        gather = lambda t: self.accelerator.gather(t.to(self.accelerator.device)).float().cpu()  # noqa: E731
        all_rewards = gather(rewards)
        logs = {f"{prefix}/mean": all_rewards.mean().item(), f"{prefix}/std": all_rewards.std(correction=0).item()}
        for key, value in info.items():
            if value.ndim == 1:
                values = gather(value)
                logs[f"{prefix}/{key}"] = values.mean().item()
                logs[f"{prefix}_std/{key}"] = values.std(correction=0).item()
        return logs

    # -- training ------------------------------------------------------------------------------------------

    def _steps_for_batch(self, trajectories: Trajectories, index: torch.Tensor, generator: torch.Generator):
        """(step, samples) pairs to train a batch on: a random `train_timestep_fraction` of its trainable steps."""
        trainable = trajectories.trainable[index]
        candidates = torch.nonzero(trainable.any(dim=0)).flatten()
        count = max(1, round(int(trainable.sum(dim=1).max()) * self.config.train_timestep_fraction))
        steps = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
        return [(step, index[trainable[:, step]]) for step in sorted(steps.tolist())]

    def _unit_loss(self, trajectories: Trajectories, index: torch.Tensor, step: int,
                   advantages: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def train_on(self, trajectories: Trajectories, advantages: torch.Tensor) -> dict[str, float]:
        """Inner epochs of optimizer steps on sampled trajectories (advantages float32 [N] on the device).
        Each optimizer step averages the loss over train_batch_size * accumulation samples x their trained
        steps; it is logged with its loss, approx_kl, clipfrac (and kl) at `global_step`. Returns epoch means."""
        config, accelerator = self.config, self.accelerator
        generator = self._generator(stream=1)
        per_step = config.train_batch_size * config.train_gradient_accumulation_steps
        count = len(trajectories.prompts)
        epoch_records: dict[str, list[float]] = defaultdict(list)
        for model in self.models.values():
            model.train()
        for _ in range(config.train_num_inner_epochs):
            order = torch.randperm(count, generator=generator).to(trajectories.latents.device)
            for chunk in range(0, count, per_step):
                units = []
                for start in range(chunk, chunk + per_step, config.train_batch_size):
                    units += self._steps_for_batch(trajectories, order[start : start + config.train_batch_size], generator)
                records = self._optimizer_step(trajectories, advantages, units)
                for key, value in records.items():
                    epoch_records[key].append(value)
        for model in self.models.values():
            model.eval()
        return {f"train/{k}": float(np.mean(v)) for k, v in epoch_records.items()}

    def _optimizer_step(self, trajectories, advantages, units) -> dict[str, float]:
        accelerator, records = self.accelerator, defaultdict(list)
        for k, (step, index) in enumerate(units):
            last = k == len(units) - 1
            with contextlib.ExitStack() as stack:
                if not last:  # gradients are all-reduced once, with the last backward of the step
                    for model in self.models.values():
                        stack.enter_context(accelerator.no_sync(model))
                loss, stats = self._unit_loss(trajectories, index, step, advantages)
                accelerator.backward(loss / len(units))
            records["loss"].append(loss.item())
            for key, value in stats.items():
                records[key].append(float(value))
        accelerator.clip_grad_norm_(self.lora_parameters, self.config.train_max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad()
        if self.ema is not None:
            self.ema.step(self.lora_parameters)
        self.progress.global_step += 1
        logs = {f"train/{k}": float(np.mean(v)) for k, v in records.items()}
        logs = {k: v.item() for k, v in accelerator.reduce({k: torch.tensor(v, device=accelerator.device)
                                                            for k, v in logs.items()}, reduction="mean").items()}
        accelerator.log({**logs, "train/lr": self.lr_scheduler.get_last_lr()[0], "epoch": self.epoch},
                        step=self.global_step)
        return {k[len("train/"):]: v for k, v in logs.items()}

    # -- the loop ------------------------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        """One epoch: (held-out eval when due,) sample, score, compute advantages, train. Returns its metrics."""
        config, logs = self.config, {"epoch": self.epoch}
        if config.eval_every and self.epoch % config.eval_every == 0:
            logs.update(self.evaluate())
        trajectories, rewards, info = self.sample_epoch()
        advantages, advantage_logs = self.compute_advantages(trajectories, rewards, info)
        logs.update(self._reward_logs("reward", rewards, info))
        logs.update(advantage_logs)
        logs.update(self.train_on(trajectories, advantages))
        self.accelerator.log(logs, step=self.global_step)
        self.progress.epoch += 1
        if config.save_every and self.epoch % config.save_every == 0:
            self.save_state(os.path.join(config.project_dir, f"checkpoint-{self.epoch}"))
        return logs

    def train(self, num_epochs: int | None = None, callback: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        """Run `num_epochs` more epochs (default: up to `config.num_epochs` in all); returns each epoch's metrics.
        Stops early when the drift guard fires (its reason is in `stopped`)."""
        history = []
        todo = self.config.num_epochs - self.epoch if num_epochs is None else num_epochs
        for _ in range(max(todo, 0)):
            if self.progress.stopped:
                break
            history.append(self.step())
            if callback is not None:
                callback(history[-1])
        self.accelerator.wait_for_everyone()
        return history

    @property
    def stopped(self) -> str | None:
        """Why the drift guard stopped training, or None."""
        return self.progress.stopped

    # -- held-out eval -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _ema_weights(self):
        """The EMA of the LoRA in place of the LoRA (when EMA is on) for evals and LoRA files."""
        if self.ema is None:
            yield
            return
        self.ema.store(self.lora_parameters)
        self.ema.copy_to(self.lora_parameters)
        try:
            yield
        finally:
            self.ema.restore(self.lora_parameters)

    def _eval_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Sample the held-out prompts with the pipeline's own deterministic sampler (prompt i seeded with
        eval_seed + i, the same at every eval), score them, log "eval/..." and write
        project_dir/eval/epoch-EPOCH.mp4 (a grid of the videos). Checks the drift guard."""
        accelerator, config = self.accelerator, self.config
        numbered = list(enumerate(self.eval_prompts))
        videos, scored = [], []
        with accelerator.split_between_processes(numbered) as mine, self._ema_weights(), accelerator.autocast():
            for start in range(0, len(mine), config.sample_batch_size):
                chunk = mine[start : start + config.sample_batch_size]
                generators = [torch.Generator(accelerator.device).manual_seed(config.eval_seed + i) for i, _ in chunk]
                prompts = [p for _, p in chunk]
                out = self.pipe(prompts, generator=generators, output_type="pt", **self._eval_kwargs()).frames
                videos.append(torch.as_tensor(out).float().cpu())
                scored.append(self._score(videos[-1], prompts))
        rewards, info = self._collect(scored) if scored else (torch.zeros(0), {})
        pairs = [("reward", rewards)] + [(k, v) for k, v in info.items() if v.ndim == 1]
        logs = {f"eval/{key}": torch.cat(gather_object([value])).mean().item() for key, value in pairs}
        all_videos = gather_object([v for v in videos])
        if accelerator.is_main_process and all_videos:
            write_video_grid(os.path.join(config.project_dir, "eval", f"epoch-{self.epoch}.mp4"), torch.cat(all_videos))
        if self.drift_guard is not None and not self.progress.stopped:
            self.progress.stopped = self.drift_guard.update({k[len("eval/"):]: v for k, v in logs.items()})
            logs["eval/stopped"] = float(self.progress.stopped is not None)
        accelerator.log(logs, step=self.global_step)
        return logs

    # -- checkpoints ---------------------------------------------------------------------------------------

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{key}": p.detach().float().cpu().contiguous()
                for name, model in self.models.items()
                for key, p in self.accelerator.unwrap_model(model).named_parameters() if p.requires_grad}

    def _save_hook(self, models, weights, output_dir) -> None:
        # accelerate would save the full denoisers; only the LoRA trains, so save it alone (exact values).
        weights.clear()
        if self.accelerator.is_main_process:
            save_file(self._trainable_state(), os.path.join(output_dir, _STATE_FILE))

    def _load_hook(self, models, input_dir) -> None:
        models.clear()
        state = load_file(os.path.join(input_dir, _STATE_FILE))
        for name, model in self.models.items():
            for key, parameter in self.accelerator.unwrap_model(model).named_parameters():
                if parameter.requires_grad:
                    parameter.data.copy_(state[f"{name}.{key}"])

    def save_state(self, directory: str | os.PathLike) -> None:
        """Write a checkpoint: the LoRA as diffusers LoRA files (the EMA weights when EMA is on) and the full
        training state for `load_state` / `config.resume_from`."""
        self.save_lora(directory)
        self.accelerator.save_state(os.fspath(directory))

    def load_state(self, directory: str | os.PathLike) -> None:
        """Continue from a `save_state` checkpoint ("latest": the newest checkpoint-EPOCH/ in project_dir)."""
        directory = os.fspath(directory)
        if directory == "latest":
            directory = latest_checkpoint(self.config.project_dir)
        if not os.path.isfile(os.path.join(directory, _STATE_FILE)):
            raise FileNotFoundError(f"{directory} is not a training checkpoint (no {_STATE_FILE}); "
                                    "checkpoints are written by save_state or every save_every epochs.")
        self.accelerator.load_state(directory)

    def save_lora(self, directory: str | os.PathLike) -> None:
        """Write the LoRA as diffusers LoRA files that the pipeline's `load_lora_weights(directory)` reads (the
        EMA weights when EMA is on). Main process only."""
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return
        layers, metadata = {}, {}
        with self._ema_weights():
            for name, model in self.models.items():
                model = self.accelerator.unwrap_model(model)
                adapter = model.active_adapters()[0]
                layers[name] = convert_state_dict_to_diffusers(get_peft_model_state_dict(model, adapter_name=adapter))
                metadata[name] = model.peft_config[adapter].to_dict()
        self._save_lora_files(os.fspath(directory), layers, metadata)

    def end(self) -> None:
        """Stop the reward worker and close the trackers."""
        if self._executor is not None:
            self._executor.shutdown()
        self.accelerator.end_training()
