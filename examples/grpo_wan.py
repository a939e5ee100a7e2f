"""Fine-tune Wan 2.1 (or 2.2) with GRPO and VideoScore as the reward, through a LoRA.

    python examples/grpo_wan.py --tiny                                    # offline smoke run on CPU, < 1 minute
    python examples/grpo_wan.py --prompts prompts.txt --project_dir grpo-run --mixed_precision bf16 \
        --gradient_checkpointing --log_with tensorboard --eval_prompts heldout.txt --eval_every 10
    accelerate launch --num_processes 8 examples/grpo_wan.py --prompts prompts.txt ...   # 8 GPUs, one sampler each

Every field of `GRPOConfig` is a flag (`--sample_num_steps 10`, `--group_size 8`, `--kl_beta 0.01`,
`--sde_window_size 2`, ...; `--help` lists them with their docstrings), plus the flags of `ScriptArguments`
below. Defaults follow Flow-GRPO's Wan2.1-T2V-1.3B run: 240x416 px, 33 frames, 10 SDE steps with noise
level 0.7, guidance 4.5, groups of 8, LoRA rank 32 (alpha 64) on the attention projections.

Memory and time (estimates from the shapes, not measured here; bf16, one video per forward pass):
- Wan2.1-T2V-1.3B transformer 2.8 GB; UMT5-XXL text encoder 11.4 GB (used once per sampling batch);
  VAE 0.5 GB (float32). LoRA rank 32: 24 M parameters, 0.4 GB with
  AdamW states (half with `--train_use_8bit_adam`).
- 33 frames at 240x416 are 9 x 30 x 52 latents, 3,510 tokens. Backpropagating the two CFG passes through
  30 blocks keeps about 13 GB of activations; `--gradient_checkpointing` brings that to about 1-2 GB for
  ~30% more time. With the VAE decode peak (~3 GB) a process needs about 31 GB, or about 20 GB with
  checkpointing: a 24 GB GPU fits it with checkpointing, an 80 GB one also holds VideoScore.
- Time per epoch per H100 at the defaults (16 videos per process): sampling ~10 s (20 transformer passes
  per video, ~1e13 FLOPs each), decoding ~8 s, training ~40 s (10 trained steps x 2 passes x backward),
  scoring in a worker thread meanwhile: about one minute. `--sde_window_size 2` (Flow-GRPO-Fast) trains
  2 steps of 10 and cuts training time about fivefold.

The reward model on its own GPU: VideoScore-v1.1 (Idefics2-8B) needs about 17 GB in bf16 plus activations
for its 48 frames. `--reward_device cuda:1` puts it there (the default when one process sees two GPUs);
with `accelerate launch` on N GPUs, give the trainer `CUDA_VISIBLE_DEVICES` of N GPUs and start the reward
elsewhere (e.g. `videoscore-reward serve` on another GPU and a `RemoteReward` client as reward_fn), or keep
one reward per process on the process's GPU (80 GB cards hold both).

Several machines: `accelerate launch --num_machines 2 --machine_rank R --main_process_ip IP
--num_processes 16 examples/grpo_wan.py ...`; groups may span processes, rewards are gathered before the
group advantages. Wan2.1-T2V-14B (or Wan 2.2 A14B: `--model Wan-AI/Wan2.2-T2V-A14B-Diffusers`, both experts
get a LoRA unless `--lora_experts high|low`) does not fit one GPU with its activations: shard the frozen
transformer with FSDP, `accelerate launch --use_fsdp --fsdp_sharding_strategy FULL_SHARD
--fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP --fsdp_transformer_layer_cls_to_wrap WanTransformerBlock
--fsdp_use_orig_params true --num_processes 8 examples/grpo_wan.py --gradient_checkpointing ...`
(28 GB of bf16 weights shard to 3.5 GB per GPU on 8).
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
from videoscore_reward.integrations.rl import GRPOConfig, GRPOTrainer

TINY = dict(num_epochs=2, num_frames=5, height=16, width=16, max_sequence_length=16, sample_num_steps=4,
            sample_guidance_scale=3.0, sample_batch_size=4, sample_num_batches_per_epoch=1, group_size=4,
            train_batch_size=2, train_gradient_accumulation_steps=1, lora_rank=4, lora_alpha=4, save_every=2,
            eval_every=1, async_reward=False, mixed_precision="no")
TINY_PROMPTS = ["a cat playing piano", "a red car on a road", "waves on a beach"]


@dataclass
class ScriptArguments:
    prompts: str | None = None
    """Prompt file, one per line (blank lines and # comments skipped)."""
    eval_prompts: str | None = None
    """Held-out prompt file for --eval_every (the reward-hacking guard)."""
    model: str = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    """WanPipeline checkpoint (hub id or folder)."""
    reward_model: str = "TIGER-Lab/VideoScore-v1.1"
    reward_device: str | None = None
    """Device of the reward model (default: cuda:1 when one process sees two GPUs, else the sampling device)."""
    weights: str | None = None
    """Aspect weights, e.g. "visual quality=1,text-to-video alignment=2"."""
    tiny: bool = False
    """Offline smoke run: tiny random Wan pipeline and VideoScore, a few tiny epochs on the CPU."""


# Copied from examples/ddpo_animatediff.py (examples stay self-contained)
def read_prompts(path: str) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise SystemExit(f"{path} has no prompts (one per line expected).")
    return prompts


def main() -> None:
    parser = HfArgumentParser((GRPOConfig, ScriptArguments))
    if "--tiny" in sys.argv:  # tiny sizes first, so any flag given still overrides them
        parser.set_defaults(**TINY, project_dir=tempfile.mkdtemp(prefix="grpo-wan-tiny-"))
    config, args = parser.parse_args_into_dataclasses()
    state = PartialState()
    if args.tiny:
        from videoscore_reward.testing.pipelines import tiny_wan_pipeline

        pipe = tiny_wan_pipeline()
        prompts = read_prompts(args.prompts) if args.prompts else TINY_PROMPTS
        eval_prompts = TINY_PROMPTS[:2]
        reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu")
    else:
        from diffusers import AutoencoderKLWan, WanPipeline

        if not args.prompts:
            raise SystemExit("--prompts FILE is required (or --tiny for an offline smoke run).")
        vae = AutoencoderKLWan.from_pretrained(args.model, subfolder="vae", torch_dtype=torch.float32)
        pipe = WanPipeline.from_pretrained(args.model, vae=vae, torch_dtype=torch.bfloat16)
        prompts = read_prompts(args.prompts)
        eval_prompts = read_prompts(args.eval_prompts) if args.eval_prompts else None
        # Copied from examples/ddpo_animatediff.py
        reward_device = args.reward_device
        if reward_device is None:
            alone_with_two = state.num_processes == 1 and torch.cuda.device_count() > 1
            reward_device = "cuda:1" if alone_with_two else state.device
        reward = VideoScoreReward.from_pretrained(args.reward_model, device=reward_device,
                                                  weights=weights_argument(args.weights) if args.weights else None)
    trainer = GRPOTrainer(config, pipe, reward.as_reward_fn(), prompts, eval_prompts=eval_prompts)

    # Copied from examples/ddpo_animatediff.py
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
