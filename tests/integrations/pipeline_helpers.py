"""Helpers shared by the diffusers tests (imported as `pipeline_helpers`)."""

import torch
from PIL import Image

from videoscore_reward import RewardOutput
from videoscore_reward.testing.pipelines import TINY_CALL_KWARGS

I2V_IMAGE = Image.new("RGB", (16, 16), (200, 40, 90))


def call_kwargs(name: str, steps: int = 3, **overrides) -> dict:
    """Small call arguments for the tiny pipeline `name` (an image for image-to-video)."""
    extra = {"image": I2V_IMAGE} if name == "wan_i2v" else {}
    return {**TINY_CALL_KWARGS[name], "num_inference_steps": steps, **extra, **overrides}


def generate(pipe, name: str, prompt="a cat", seed=0, **overrides):
    return pipe(prompt=prompt, generator=torch.Generator().manual_seed(seed), **call_kwargs(name, **overrides))


def brightness_reward(frames, prompts):
    """A fast stand-in reward: mean brightness of each video (frames float [B, F, C, H, W] in [0, 1])."""
    if isinstance(frames, list):
        frames = torch.stack([f.float() / 255 for f in frames])
    rewards = frames.float().mean(dim=(1, 2, 3, 4))
    return RewardOutput(scores=rewards[:, None].repeat(1, 5), rewards=rewards)
