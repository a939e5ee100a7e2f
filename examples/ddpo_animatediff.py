"""Fine-tune AnimateDiff with DDPO (or RWR) and VideoScore-v1.1 as the reward, through a LoRA (needs a GPU and the Hub).

    python examples/ddpo_animatediff.py --prompts prompts.txt --out ddpo-run
    accelerate launch examples/ddpo_animatediff.py --prompts prompts.txt     # several GPUs: one sampler per process

prompts.txt holds one prompt per line (blank lines and lines starting with # are skipped). Use a few to a
few dozen prompts: the per-prompt stat tracker compares each video with earlier videos of its prompt.

Arguments:
  --prompts          prompt file (required)
  --out              run folder: LoRA checkpoints (checkpoint-EPOCH/) and tracker logs (default ddpo-run)
  --base             SD1.5 base model (default emilianJR/epiCRealism)
  --adapter          AnimateDiff motion adapter (default guoyww/animatediff-motion-adapter-v1-5-2)
  --reward-model     VideoScore checkpoint (default TIGER-Lab/VideoScore-v1.1)
  --reward-device    device for VideoScore (default: cuda:1 when this process sees two GPUs and runs alone, else
                     the sampling GPU)
  --weights          aspect weights, e.g. "text-to-video alignment=2,visual quality=1"
  --objective        ddpo (PPO clipped, default) or rwr
  --advantages       per_prompt (default), per_aspect or batch
  --epochs, --frames, --steps, --guidance, --height, --width, --batch-size, --batches-per-epoch,
  --train-batch-size, --grad-accum, --lr, --lora-rank, --lora-target, --mixed-precision, --log-with, --save-every
                     see DDPOConfig (videoscore_reward.integrations.rl.ddpo) for what each does

Defaults (per process): 16 frames at 384x384, 20 DDIM steps (eta 1), guidance 7.5, 4 batches of 2 videos per
epoch, train batch 1 with 4-step accumulation (an optimizer step covers 4 videos x 19 denoising steps),
LoRA rank 8 on the motion modules, lr 3e-4, PPO clip 1e-4, bf16.

Memory, measured by the shapes involved rather than on a GPU here: AnimateDiff in bf16 takes about 5 GB of
weights; training backpropagates one UNet pass over [2 x train_batch, 4, 16, 48, 48] latents (guidance
doubles the batch), about 20-25 GB with gradient checkpointing off at 384 px (use --height/--width 256 or
--frames 8 to halve it). VideoScore-v1.1 (Idefics2-8B) in bf16 needs about 17 GB plus activations for
48 frames per video: one 80 GB GPU holds both; on two GPUs put the reward on the second.
"""

import argparse
from pathlib import Path

import torch
from accelerate import PartialState
from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

from videoscore_reward import VideoScoreReward
from videoscore_reward.cli import parse_weights
from videoscore_reward.integrations.rl import DDPOConfig, DDPOTrainer


def read_prompts(path: str) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise SystemExit(f"{path} has no prompts (one per line expected).")
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--out", default="ddpo-run")
    parser.add_argument("--base", default="emilianJR/epiCRealism")
    parser.add_argument("--adapter", default="guoyww/animatediff-motion-adapter-v1-5-2")
    parser.add_argument("--reward-model", default="TIGER-Lab/VideoScore-v1.1")
    parser.add_argument("--reward-device", default=None)
    parser.add_argument("--weights", type=parse_weights, default=None)
    parser.add_argument("--objective", choices=["ddpo", "rwr"], default="ddpo")
    parser.add_argument("--advantages", choices=["per_prompt", "per_aspect", "batch"], default="per_prompt")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--batches-per-epoch", type=int, default=4)
    parser.add_argument("--train-batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--lora-target", choices=["motion", "spatial", "both"], default="motion")
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="bf16")
    parser.add_argument("--log-with", default="tensorboard")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = DDPOConfig(
        num_epochs=args.epochs, seed=args.seed, project_dir=args.out, log_with=args.log_with or None,
        mixed_precision=args.mixed_precision, save_every=args.save_every, objective=args.objective,
        advantages=args.advantages, num_frames=args.frames, height=args.height, width=args.width,
        sample_num_steps=args.steps, sample_guidance_scale=args.guidance, sample_batch_size=args.batch_size,
        sample_num_batches_per_epoch=args.batches_per_epoch, train_batch_size=args.train_batch_size,
        train_gradient_accumulation_steps=args.grad_accum, train_learning_rate=args.lr, lora_rank=args.lora_rank,
        lora_target=args.lora_target,
    )
    adapter = MotionAdapter.from_pretrained(args.adapter)
    pipe = AnimateDiffPipeline.from_pretrained(args.base, motion_adapter=adapter)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear", clip_sample=False,
                                               timestep_spacing="linspace", steps_offset=1)
    pipe.enable_vae_slicing()
    prompts = read_prompts(args.prompts)

    state = PartialState()
    reward_device = args.reward_device
    if reward_device is None:
        alone_with_two = state.num_processes == 1 and torch.cuda.device_count() > 1
        reward_device = "cuda:1" if alone_with_two else state.device
    reward = VideoScoreReward.from_pretrained(args.reward_model, device=reward_device, weights=args.weights)
    trainer = DDPOTrainer(config, pipe, reward.as_reward_fn(), prompts)

    def report(logs: dict) -> None:
        if state.is_main_process:
            aspects = "  ".join(f"{k[len('reward/'):]} {v:.3f}" for k, v in logs.items() if k.startswith("reward/"))
            print(f"epoch {logs['epoch']}: {aspects}  loss {logs.get('train/loss', float('nan')):.4g}", flush=True)

    trainer.train(callback=report)
    trainer.save_lora(Path(args.out) / "final")
    trainer.end()
    if state.is_main_process:
        print(f"LoRA in {Path(args.out) / 'final'}: pipe.load_lora_weights({str(Path(args.out) / 'final')!r})")


if __name__ == "__main__":
    main()
