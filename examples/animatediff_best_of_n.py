"""Best-of-N AnimateDiff generations reranked by VideoScore (needs a GPU and the Hub, or --tiny).

    python examples/animatediff_best_of_n.py --prompt "a corgi running on the beach" --n 8 --out best.mp4
    python examples/animatediff_best_of_n.py --tiny      # offline CPU smoke run: tiny random AnimateDiff and reward

Arguments:
  --prompt           text prompt (repeat the flag for several prompts)
  --n                candidates per prompt (default 4)
  --chunk-size       videos generated per pipeline call; lower it if you run out of memory (default 4)
  --base             SD1.5 base model (default emilianJR/epiCRealism)
  --adapter          AnimateDiff motion adapter (default guoyww/animatediff-motion-adapter-v1-5-2)
  --reward-model     VideoScore checkpoint (default TIGER-Lab/VideoScore-v1.1)
  --frames, --steps, --guidance, --height, --width   pipeline settings (16, 25, 7.5, 512, 512)
  --weights          aspect weights, e.g. "text-to-video alignment=2,visual quality=1"
  --out              where to write the best video of the first prompt (mp4)
  --tiny             tiny random pipeline and reward on the CPU, offline, seconds (ignores the model flags)

Memory (estimated, not measured): AnimateDiff in fp16 needs about 8 GB at chunk size 4 and 512 px; VideoScore-v1.1 in bf16 about
17 GB for its weights plus activations for 48 frames. One 40 GB+ GPU holds both.
"""

import argparse

import torch

from videoscore_reward import VideoScoreReward
from videoscore_reward.cli import weights_argument
from videoscore_reward.integrations.diffusers import best_of_n, save_video


def load(args):
    """The pipeline, the reward and the pipeline's call arguments."""
    if args.tiny:
        from videoscore_reward.testing.pipelines import TINY_CALL_KWARGS, tiny_pipeline

        reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu", weights=args.weights)
        return tiny_pipeline("animatediff"), reward, dict(TINY_CALL_KWARGS["animatediff"])
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    adapter = MotionAdapter.from_pretrained(args.adapter, torch_dtype=torch.float16)
    pipe = AnimateDiffPipeline.from_pretrained(args.base, motion_adapter=adapter, torch_dtype=torch.float16)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear", clip_sample=False,
                                               timestep_spacing="linspace", steps_offset=1)
    pipe.to("cuda")
    reward = VideoScoreReward.from_pretrained(args.reward_model, device="cuda", weights=args.weights)
    settings = dict(num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=args.guidance,
                    height=args.height, width=args.width)
    return pipe, reward, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", action="append")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--base", default="emilianJR/epiCRealism")
    parser.add_argument("--adapter", default="guoyww/animatediff-motion-adapter-v1-5-2")
    parser.add_argument("--reward-model", default="TIGER-Lab/VideoScore-v1.1")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--weights", type=weights_argument, default=None)
    parser.add_argument("--out", default="best.mp4")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    prompts = args.prompt or ["a corgi running on the beach"]

    pipe, reward, settings = load(args)
    results = best_of_n(pipe, prompts, args.n, reward, chunk_size=args.chunk_size, **settings)
    for result in results:
        print(f"{result.prompt!r}: best seed {result.seed} (reward {result.reward:.3f})")
        for candidate in result.candidates:
            print(f"  seed {candidate.seed}: reward {candidate.reward:.3f}  scores {[round(s, 2) for s in candidate.scores]}")
    save_video(results[0].video, args.out, fps=8)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
