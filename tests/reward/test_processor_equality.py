"""Our tensor path against the reference path: PIL frames -> the checkpoint's processor -> model."""

import hashlib

import pytest
import torch
from PIL import Image

from videoscore_reward import VideoScoreReward, sample_indices
from videoscore_reward.reward.preprocess import check_videos, preprocess_videos
from videoscore_reward.reward.prompt import build_query, query_template
from videoscore_reward.testing import make_frames


def reference_inputs(reward, frames, prompt):
    """What the original VideoScore example feeds the model for one video (uint8 [T, 3, H, W])."""
    frames = frames[sample_indices(frames.shape[0], reward.num_frames)]
    images = [Image.fromarray(f.permute(1, 2, 0).numpy()) for f in frames]
    return reward.processor(text=build_query(prompt, len(images)), images=images, return_tensors="pt")


def reference_scores(reward, frames, prompt):
    inputs = reference_inputs(reward, frames, prompt)
    with torch.inference_mode():
        return reward.model(**inputs).logits.float()[0]


def our_pixels(reward, frames):
    pixel_values, mask, _ = preprocess_videos(
        check_videos([frames]), num_frames=reward.num_frames, settings=reward.image_settings, device=torch.device("cpu")
    )
    return pixel_values, mask


def test_query_text_is_the_template_byte_for_byte():
    query = build_query("a cat", 3)
    assert query.startswith("\nSuppose you are an expert")
    assert query.endswith('the text prompt is "a cat",\nall the frames of video are as follows:\n<image> <image> <image> ')
    assert "in that sub-score, \nthe lowest" in query


# SHA-256 of VideoScore's query template as its authors published it (the original repository's text,
# kept byte for byte); the package's copy must not drift by a space or a newline.
ORIGINAL_TEMPLATE_SHA256 = "49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0"


def test_query_template_is_the_original_byte_for_byte():
    assert hashlib.sha256(query_template().encode("utf-8")).hexdigest() == ORIGINAL_TEMPLATE_SHA256
    assert build_query("x y", 2) == query_template().format(text_prompt="x y") + "<image> " * 2


def test_no_resize_pixels_and_scores_equal_processor_path(tiny_reward):
    frames = make_frames(20, 384, 384, seed=1)
    inputs = reference_inputs(tiny_reward, frames, "a red fox")
    pixel_values, mask = our_pixels(tiny_reward, frames)
    assert pixel_values.shape == inputs["pixel_values"].shape
    assert torch.equal(pixel_values, inputs["pixel_values"])
    assert torch.equal(mask, inputs["pixel_attention_mask"].bool())

    ours = tiny_reward(frames[None], ["a red fox"]).scores[0]
    torch.testing.assert_close(ours, reference_scores(tiny_reward, frames, "a red fox"), atol=1e-5, rtol=0)


def test_text_inputs_equal_processor_path(tiny_reward):
    frames = make_frames(4, 384, 384)
    reference = reference_inputs(tiny_reward, frames, "two dogs, running")
    ours = tiny_reward.processor(text=[build_query("two dogs, running", 4)], return_tensors="pt")
    assert torch.equal(ours["input_ids"], reference["input_ids"])
    image_id = tiny_reward.model.config.image_token_id
    assert int((ours["input_ids"] == image_id).sum()) == 4 * 64


@pytest.mark.parametrize(
    "height, width",
    [(256, 256), (768, 1024), (300, 500), (1080, 720), (48, 64)],
    ids=["upscale-256", "downscale-1024x768", "non-square-500x300", "portrait-720x1080", "upscale-64x48"],
)
def test_resized_pixels_and_scores_equal_processor_path(tiny_reward, height, width):
    frames = make_frames(3, height, width, seed=2)
    inputs = reference_inputs(tiny_reward, frames, "p")
    pixel_values, mask = our_pixels(tiny_reward, frames)
    assert pixel_values.shape == inputs["pixel_values"].shape, "resize rule must give the processor's size"
    assert torch.equal(mask, inputs["pixel_attention_mask"].bool())
    # Pillow's resize and the processor's float arithmetic, reproduced: equal to the last bit, which
    # matters in bfloat16, where a one-ulp float32 difference flips about 1% of the values.
    assert torch.equal(pixel_values, inputs["pixel_values"])

    ours = tiny_reward(frames[None], "p").scores[0]
    torch.testing.assert_close(ours, reference_scores(tiny_reward, frames, "p"), atol=1e-5, rtol=0)


def test_float_input_scores_equal_8bit_frames(tiny_reward):
    frames = make_frames(16, 384, 384, seed=3)
    as_float = frames.float() / 255
    uint8 = tiny_reward(frames[None], "p").scores
    torch.testing.assert_close(tiny_reward(as_float[None], "p").scores, uint8, atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny_reward(as_float[None] * 2 - 1, "p", value_range=(-1, 1)).scores, uint8, atol=1e-5, rtol=0)
    torch.testing.assert_close(tiny_reward(as_float.transpose(0, 1)[None], "p", layout="BCTHW").scores, uint8, atol=1e-5, rtol=0)


def test_videos_of_different_lengths_and_sizes_in_one_call(tiny_reward):
    videos = [make_frames(30, 64, 64, seed=4), make_frames(5, 384, 400, seed=5), make_frames(16, 100, 60, seed=6)]
    prompts = ["a long prompt about a cat that plays the piano", "short", "third"]
    together = tiny_reward(videos, prompts).scores
    for i, (video, prompt) in enumerate(zip(videos, prompts)):
        # Padding (tokens and pixels) must not change a video's scores.
        alone = tiny_reward([video], [prompt]).scores[0]
        torch.testing.assert_close(together[i], alone, atol=1e-4, rtol=0, msg=f"video {i}")


def test_tensor_resize_equals_pillow_for_many_sizes():
    """The resize that runs on GPUs, run here on CPU, against Pillow: up- and downscales in either or
    both directions. (On CPU the reward calls Pillow itself.)"""
    import random

    import numpy as np

    from videoscore_reward.reward.preprocess import _resize_emulating_pil

    rng = random.Random(0)
    sizes = [((256, 256), (378, 378)), ((2160, 3840), (551, 980)), ((1, 1), (378, 378)), ((480, 854), (378, 672))]
    sizes += [((rng.randint(2, 1300), rng.randint(2, 1300)), (rng.randint(50, 980), rng.randint(50, 980))) for _ in range(16)]
    generator = torch.Generator().manual_seed(0)
    for (height, width), (out_height, out_width) in sizes:
        image = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator)
        expected = np.array(Image.fromarray(image.numpy()).resize((out_width, out_height), Image.BILINEAR))
        ours = _resize_emulating_pil(image.permute(2, 0, 1)[None], (out_height, out_width))
        assert torch.equal(ours[0].permute(1, 2, 0), torch.from_numpy(expected)), f"{height}x{width} -> {out_height}x{out_width}"


def test_bfloat16_scores_equal_processor_path(tiny_checkpoint_dir):
    """In bfloat16 too: the same model gives the same scores from our inputs and the processor's."""
    reward = VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", dtype=torch.bfloat16)
    for height, width in [(384, 384), (120, 160), (576, 1024)]:
        frames = make_frames(20, height, width, seed=7)
        assert torch.equal(reward(frames[None], "a fox").scores[0], reference_scores(reward, frames, "a fox"))
