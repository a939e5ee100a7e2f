"""Fine-tune AnimateDiff with DDPO (or RWR) and VideoScore-v1.1 as the reward, through a LoRA.

    python examples/ddpo_animatediff.py --tiny                               # offline smoke run on CPU, < 1 minute
    python examples/ddpo_animatediff.py --prompts prompts.txt --project_dir ddpo-run --mixed_precision bf16
    accelerate launch examples/ddpo_animatediff.py --prompts prompts.txt     # several GPUs: one sampler per process

Every field of `DDPOConfig` is a flag (`--objective rwr`, `--advantages per_aspect`, `--sample_num_steps 20`,
`--resume_from latest`, ...; `--help` lists them with their docstrings), plus the flags of `ScriptArguments`
below. prompts.txt holds one prompt per line (blank lines and # comments skipped). Use a few to a few dozen
prompts: the per-prompt stat tracker compares each video with earlier videos of its prompt.

Defaults of this script (per process): 16 frames at 384x384, 20 DDIM steps (eta 1), guidance 7.5, 4 batches
of 2 videos per epoch, train batch 1 with 4-step accumulation, LoRA rank 8 on the motion modules, lr 3e-4,
PPO clip 1e-4, bf16, tensorboard logs.

Memory, estimated from the shapes rather than measured: AnimateDiff in bf16 takes about 5 GB of weights;
training backpropagates one UNet pass over [2 x train_batch, 4, 16, 48, 48] latents (guidance doubles the
batch), about 20-25 GB at 384 px (--gradient_checkpointing roughly halves it). VideoScore-v1.1 (Idefics2-8B)
in bf16 needs about 17 GB plus activations for 48 frames per video: one 80 GB GPU holds both; on two GPUs
put the reward on the second (--reward_device cuda:1, the default when one process sees two GPUs).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import HfArgumentParser

from videoscore_reward import VideoScoreReward
from videoscore_reward.cli import weights_argument
from videoscore_reward.integrations.rl import DDPOConfig, DDPOTrainer

SCRIPT_DEFAULTS = dict(project_dir="ddpo-run", num_frames=16, height=384, width=384, sample_batch_size=2,
                       train_gradient_accumulation_steps=4, mixed_precision="bf16", log_with="tensorboard")
TINY = dict(num_epochs=2, num_frames=2, height=16, width=16, sample_num_steps=4, sample_guidance_scale=3.0,
            sample_batch_size=2, sample_num_batches_per_epoch=2, train_batch_size=2, train_gradient_accumulation_steps=1,
            lora_rank=4, lora_target="both", advantages="per_aspect", save_every=2, eval_every=1, async_reward=False,
            mixed_precision="no", log_with=None)
TINY_PROMPTS = ["a cat playing piano", "a red car on a road"]


@dataclass
class ScriptArguments:
    prompts: str | None = None
    """Prompt file, one per line (blank lines and # comments skipped)."""
    eval_prompts: str | None = None
    """Held-out prompt file for --eval_every (the reward-hacking guard)."""
    base: str = "emilianJR/epiCRealism"
    """SD1.5 base model."""
    adapter: str = "guoyww/animatediff-motion-adapter-v1-5-2"
    """AnimateDiff motion adapter."""
    reward_model: str = "TIGER-Lab/VideoScore-v1.1"
    reward_device: str | None = None
    """Device of the reward model (default: cuda:1 when one process sees two GPUs, else the sampling device)."""
    weights: str | None = None
    """Aspect weights, e.g. "text-to-video alignment=2,visual quality=1"."""
    tiny: bool = False
    """Offline smoke run: tiny random AnimateDiff and VideoScore, a few tiny epochs on the CPU."""


def read_prompts(path: str) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise SystemExit(f"{path} has no prompts (one per line expected).")
    return prompts


def main() -> None:
    parser = HfArgumentParser((DDPOConfig, ScriptArguments))
    tiny = dict(**TINY, project_dir=tempfile.mkdtemp(prefix="ddpo-tiny-")) if "--tiny" in sys.argv else None
    parser.set_defaults(**(tiny or SCRIPT_DEFAULTS))  # flags given still override these
    config, args = parser.parse_args_into_dataclasses()
    state = PartialState()
    if args.tiny:
        from videoscore_reward.testing.pipelines import tiny_animatediff_pipeline

        pipe = tiny_animatediff_pipeline()
        prompts = read_prompts(args.prompts) if args.prompts else TINY_PROMPTS
        eval_prompts = TINY_PROMPTS
        reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu")
    else:
        from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

        if not args.prompts:
            raise SystemExit("--prompts FILE is required (or --tiny for an offline smoke run).")
        adapter = MotionAdapter.from_pretrained(args.adapter)
        pipe = AnimateDiffPipeline.from_pretrained(args.base, motion_adapter=adapter)
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear", clip_sample=False,
                                                   timestep_spacing="linspace", steps_offset=1)
        pipe.enable_vae_slicing()
        prompts = read_prompts(args.prompts)
        eval_prompts = read_prompts(args.eval_prompts) if args.eval_prompts else None
        reward_device = args.reward_device
        if reward_device is None:
            alone_with_two = state.num_processes == 1 and torch.cuda.device_count() > 1
            reward_device = "cuda:1" if alone_with_two else state.device
        reward = VideoScoreReward.from_pretrained(args.reward_model, device=reward_device,
                                                  weights=weights_argument(args.weights) if args.weights else None)
    trainer = DDPOTrainer(config, pipe, reward.as_reward_fn(), prompts, eval_prompts=eval_prompts)

    def report(logs: dict) -> None:
        if state.is_main_process:
            aspects = "  ".join(f"{k[len('reward/'):]} {v:.3f}" for k, v in logs.items() if k.startswith("reward/"))
            print(f"epoch {logs['epoch']}: {aspects}  loss {logs.get('train/loss', float('nan')):.4g}", flush=True)

    trainer.train(callback=report)
    final = Path(config.project_dir) / "final"
    trainer.save_lora(final)
    trainer.end()
    if state.is_main_process:
        print(f"LoRA in {final}: pipe.load_lora_weights({str(final)!r})")


if __name__ == "__main__":
    main()
