"""Best-of-N Wan 2.1 text-to-video (1.3B) generations reranked by VideoScore, and the winner regenerated
with the reward watched at every step.

    python examples/wan_best_of_n.py --prompt "a corgi running on the beach" --n 8 --out best.mp4
    python examples/wan_best_of_n.py --tiny      # offline CPU smoke run: tiny random Wan and reward

Arguments:
  --prompt           text prompt (repeat the flag for several prompts)
  --negative-prompt  one for all prompts, or repeat the flag once per prompt
  --n                candidates per prompt (default 4)
  --chunk-size       videos generated per pipeline call; lower it if you run out of memory (default 2)
  --model            Wan 2.1 checkpoint in diffusers format (default Wan-AI/Wan2.1-T2V-1.3B-Diffusers)
  --reward-model     VideoScore checkpoint (default TIGER-Lab/VideoScore-v1.1)
  --frames, --steps, --guidance, --height, --width   pipeline settings (33, 30, 5.0, 480, 832)
  --every            score the clean estimate every this many steps while regenerating the winner (5)
  --candidates-dir   also write every candidate and a scores.csv there (`videoscore-reward organize` reads it)
  --out              where to write the best video of the first prompt (mp4)
  --tiny             tiny random pipeline and reward on the CPU, offline, seconds (ignores the model flags)

Memory (estimated from parameter counts, not measured): in bf16 the Wan 1.3B transformer takes about
2.6 GB, the UMT5-XXL text encoder about 11 GB (only needed while encoding prompts: `--offload` moves it
and the VAE to the CPU between uses), the VAE 0.3 GB; decoding 33 frames at 480x832 peaks at a few GB
per video, and the transformer's activations at 2 videos per chunk add a few GB more. VideoScore-v1.1 in
bf16 needs about 17 GB plus activations for 48 frames. So about 40 GB on one GPU without offloading,
about 30 GB with `--offload`; `--chunk-size 1` lowers the peak further.
"""

import argparse

import torch

from videoscore_reward import VideoScoreReward
from videoscore_reward.integrations.diffusers import RewardCallback, best_of_n, save_video


def load(args):
    """The pipeline, the reward and the pipeline's call arguments."""
    if args.tiny:
        from videoscore_reward.testing.pipelines import TINY_CALL_KWARGS, tiny_pipeline

        reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu")
        return tiny_pipeline("wan"), reward, dict(TINY_CALL_KWARGS["wan"])
    from diffusers import AutoencoderKLWan, WanPipeline

    # The Wan VAE stays in float32, as the model card recommends.
    vae = AutoencoderKLWan.from_pretrained(args.model, subfolder="vae", torch_dtype=torch.float32)
    pipe = WanPipeline.from_pretrained(args.model, vae=vae, torch_dtype=torch.bfloat16)
    if args.offload:
        pipe.enable_model_cpu_offload()
    else:
        pipe.to("cuda")
    reward = VideoScoreReward.from_pretrained(args.reward_model, device="cuda")
    settings = dict(num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    height=args.height, width=args.width)
    return pipe, reward, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", action="append")
    parser.add_argument("--negative-prompt", action="append")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=2)
    parser.add_argument("--model", default="Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    parser.add_argument("--reward-model", default="TIGER-Lab/VideoScore-v1.1")
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--offload", action="store_true", help="enable_model_cpu_offload()")
    parser.add_argument("--candidates-dir", default=None)
    parser.add_argument("--out", default="best.mp4")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    prompts = args.prompt or ["a corgi running on the beach, golden hour"]
    if args.tiny and args.every == parser.get_default("every"):
        args.every = 1  # the tiny pipeline runs 4 steps

    pipe, reward, settings = load(args)
    if args.negative_prompt:
        settings["negative_prompt"] = args.negative_prompt[0] if len(args.negative_prompt) == 1 else args.negative_prompt
    results = best_of_n(pipe, prompts, args.n, reward, chunk_size=args.chunk_size, output_dir=args.candidates_dir,
                        **settings)
    for result in results:
        print(f"{result.prompt!r}: best seed {result.seed} (reward {result.reward:.3f})")
        for candidate in result.candidates:
            print(f"  seed {candidate.seed}: reward {candidate.reward:.3f}  scores {[round(s, 2) for s in candidate.scores]}")

    # Regenerate the first winner alone, scoring its clean estimate along the way (no extra denoiser call).
    winner = results[0]
    if isinstance(settings.get("negative_prompt"), list):
        settings["negative_prompt"] = settings["negative_prompt"][0]
    callback = RewardCallback(pipe, reward, winner.prompt, every=args.every)
    video = pipe(prompt=winner.prompt, generator=torch.Generator(pipe.device).manual_seed(winner.seed),
                 output_type="pt", callback_on_step_end=callback, **settings).frames[0]
    callback.remove()
    for entry in callback.history:
        kind = "final video" if entry.final else "clean estimate"
        print(f"  step {entry.step_index:3d} (t={entry.timestep:7.2f}) {kind}: reward {entry.output.rewards.item():.3f}")
    difference = (video.float().cpu() - winner.video.float().cpu()).abs().max().item()
    print(f"regenerated alone: max pixel difference to the best-of-n winner {difference:.2e} (float rounding)")
    save_video(winner.video, args.out, fps=16)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
