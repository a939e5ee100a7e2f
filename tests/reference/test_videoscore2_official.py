"""Our VideoScore2 path against the official one (vs2_inference.py's pipeline on transformers 4.53.2 and
qwen-vl-utils, in its own environment; see videoscore2_pipeline.py for its two torchvision stand-ins),
on the same tiny checkpoint and video files, float32 on CPU: the forced score line's digit logits, the
frames and grids, and greedy generation."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

from videoscore_reward import load_video
from videoscore_reward.reward.videoscore2 import VIDEOSCORE2, VideoScore2Reward
from videoscore_reward.reward.videoscore2.facts import query_template
from videoscore_reward.testing import write_test_video
from videoscore_reward.testing.videoscore2 import tiny_videoscore2_checkpoint

pytestmark = pytest.mark.reference  # builds an environment from the package index on first use

HERE = Path(__file__).parent
MAX_NEW_TOKENS = 12
OFFICIAL_MAX_PIXELS = 768 * 28 * 28  # qwen-vl-utils' default, which vs2_inference.py runs

# (file, frames, width, height, fps, prompt): upscaled to the minimum, 2.5 s, 8 s where transformers 4.x and
# 5.x place the query differently, 24 fps, portrait, a frame size above the official cap but below ours.
VIDEOS = [
    ("small_64x48.mp4", 20, 64, 48, 8, "a red fox jumping over a fence"),
    ("long_64x48.mp4", 64, 64, 48, 8, "short"),
    ("film_160x120.mp4", 33, 160, 120, 24, 'a cat "playing" the piano, $5 {braces}'),
    ("portrait_90x160.mp4", 30, 90, 160, 12, "portrait video of a person walking"),
    ("wide_1024x576.mp4", 9, 1024, 576, 6, "ocean waves at sunset"),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vs2-videos")
    return [(write_test_video(folder / name, frames, width, height, fps=fps), prompt)
            for name, frames, width, height, fps, prompt in VIDEOS]


@pytest.fixture(scope="module")
def official(videoscore2_python, videos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vs2-official")
    checkpoint = tiny_videoscore2_checkpoint(folder / "checkpoint")
    (folder / "template.txt").write_bytes(query_template().encode("utf-8"))
    answer = {"prefix": VIDEOSCORE2.answer_prefix, "labels": list(VIDEOSCORE2.score_labels), "digits": list(VIDEOSCORE2.digits)}
    (folder / "answer.json").write_text(json.dumps(answer))
    items = [f"{path}::{prompt}" for path, prompt in videos]
    command = [str(videoscore2_python), str(HERE / "videoscore2_pipeline.py"), str(checkpoint), str(folder / "template.txt"),
               str(folder / "answer.json"), str(MAX_NEW_TOKENS), str(folder / "out.json"), *items]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"the official pipeline failed:\n{result.stderr[-3000:]}"
    results = json.loads((folder / "out.json").read_text())
    return checkpoint, [results[item] for item in items]


def test_forced_digit_logits_equal_the_official_pipeline(official, videos):
    checkpoint, expected = official
    reward = VideoScore2Reward.from_pretrained(checkpoint, device="cpu", batch_size=3, max_pixels=OFFICIAL_MAX_PIXELS)
    frames = [load_video(path, reward.sampling) for path, _ in videos]
    prompts = [prompt for _, prompt in videos]
    assert [f.shape[0] for f in frames] == [e["frames"] for e in expected]
    assert [list(reward.prepare(f).grid_thw) for f in frames] == [e["grid"] for e in expected]
    want = torch.tensor([e["digit_logits"] for e in expected])
    alone = torch.cat([reward([f], [p]).digit_logits for f, p in zip(frames, prompts)])
    batched = reward(frames, prompts).digit_logits
    # Measured: max |difference| 5e-6 (float32 sums in another order). With transformers 5.x's positions
    # the 8 s video is off by 0.72; with the training pixel cap the 1024x576 frames by 0.98.
    torch.testing.assert_close(alone, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(batched, want, atol=1e-4, rtol=0)
    # The training cap (960x720) changes only the frame above the official one (1024x576).
    default = VideoScore2Reward.from_pretrained(checkpoint, device="cpu")
    torch.testing.assert_close(default(frames[:4], prompts[:4]).digit_logits, want[:4], atol=1e-4, rtol=0)


def test_greedy_generation_equals_the_official_pipeline(official, videos):
    checkpoint, expected = official
    reward = VideoScore2Reward.from_pretrained(checkpoint, device="cpu", mode="official", max_pixels=OFFICIAL_MAX_PIXELS)
    frames = [load_video(path, reward.sampling) for path, _ in videos]
    out = reward(frames, [p for _, p in videos], do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    assert out.texts == [e["text"] for e in expected]
