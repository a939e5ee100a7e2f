"""Each adapter called the way its trainer calls it gives the in-process reward's numbers."""

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from videoscore_reward import ASPECTS, VideoScoreReward, load_video
from videoscore_reward.integrations.adapters import (
    VIDEOALIGN_KEYS,
    DanceGRPOReward,
    FlowFactoryReward,
    FlowGRPOReward,
)
from videoscore_reward.testing import write_test_video

PROMPTS = ["a red fox in the snow", "a sailing boat at dusk", "a city street at night"]


@pytest.fixture(scope="module")
def weighted_reward(tiny_checkpoint_dir):
    """Unequal weights and unit normalization, so "avg" cannot be a plain mean of the aspects."""
    return VideoScoreReward.from_pretrained(
        tiny_checkpoint_dir, device="cpu", weights={"visual quality": 3.0, "dynamic degree": 1.0}, normalize="unit"
    )


def _videos(batch=3, frames=20, height=32, width=40, seed=0):
    return torch.rand(batch, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


def test_flow_grpo_form_from_the_trainers_thread_pool(weighted_reward):
    reward_fn = FlowGRPOReward(weighted_reward)
    videos = _videos()
    prompt_metadata = [{"tag": i} for i in range(3)]
    with ThreadPoolExecutor(max_workers=8) as executor:  # as scripts/train_wan2_1.py
        futures = [executor.submit(reward_fn, videos, PROMPTS, prompt_metadata, only_strict=True) for _ in range(3)]
        futures.append(executor.submit(reward_fn, videos, PROMPTS, prompt_metadata, ref_images=videos[:, 0],
                                       only_strict=False))
        results = [future.result() for future in futures]
    expected = weighted_reward(videos, PROMPTS)
    # Independent of the reward's formula: unit-normalize (1-4 -> 0-1), weigh 3:1.
    unit = (expected.scores - 1) / 3
    by_hand = (3 * unit[:, 0] + unit[:, 2]) / 4
    for rewards, reward_metadata in results:
        assert reward_metadata == {}
        assert set(rewards) == {*ASPECTS, "avg"}
        # What the trainer does next: every entry becomes a float tensor of B values.
        rewards = {key: torch.as_tensor(value).float() for key, value in rewards.items()}
        for i, aspect in enumerate(ASPECTS):
            torch.testing.assert_close(rewards[aspect], expected.scores[:, i], atol=1e-6, rtol=0)
        torch.testing.assert_close(rewards["avg"], by_hand, atol=1e-6, rtol=0)
    assert reward_fn.__name__ == "videoscore"


def test_flow_grpo_form_scores_images_as_one_frame_videos(tiny_reward):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    rewards, _ = FlowGRPOReward(tiny_reward)(images, PROMPTS[:2], [{}, {}])
    expected = tiny_reward(images[:, None], PROMPTS[:2])
    np.testing.assert_allclose(rewards["avg"], expected.rewards.numpy(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"videos must be a float tensor \[B, T, C, H, W\].*got \(3, 32, 32\)"):
        FlowGRPOReward(tiny_reward)(images[0], PROMPTS[:1], [{}])


def test_adapters_pickle_and_score_the_same(tiny_reward):
    videos = _videos(batch=2)
    for adapter in (FlowGRPOReward(tiny_reward), FlowFactoryReward(tiny_reward)):
        copy = pickle.loads(pickle.dumps(adapter))
        assert copy.__name__ == "videoscore"
        if isinstance(adapter, FlowGRPOReward):
            np.testing.assert_array_equal(copy(videos, PROMPTS[:2])[0]["avg"], adapter(videos, PROMPTS[:2])[0]["avg"])
        else:
            torch.testing.assert_close(copy(prompt=PROMPTS[:2], video=list(videos)).rewards,
                                       adapter(prompt=PROMPTS[:2], video=list(videos)).rewards, atol=0, rtol=0)


def test_dance_grpo_path_form_one_video_at_a_time(weighted_reward, tmp_path):
    paths = [write_test_video(tmp_path / f"hunyuan_0_{i}.mp4", num_frames=24 + 8 * i, width=48, height=32)
             for i in range(2)]
    inferencer = DanceGRPOReward(weighted_reward)
    for path, caption in zip(paths, PROMPTS):
        reward = inferencer.reward([str(path.resolve())], [caption], use_norm=True)  # as train_grpo_hunyuan.py
        frames = load_video(path, num_frames=weighted_reward.num_frames)
        assert frames.shape[0] == 16
        expected = weighted_reward([frames], [caption])
        assert len(reward) == 1
        row = reward[0]
        for i, aspect in enumerate(ASPECTS):
            assert row[aspect] == pytest.approx(expected.scores[0, i].item(), abs=1e-6)
        for key, aspect in VIDEOALIGN_KEYS.items():
            assert row[key] == row[aspect]
        assert row["Overall"] == row["reward"] == pytest.approx(expected.rewards[0].item(), abs=1e-6)
        assert torch.tensor(row["VQ"]).dtype == torch.float32  # what the trainer does with it
    both = inferencer(paths, PROMPTS[:2])
    assert [r["reward"] for r in both] == pytest.approx(
        [inferencer([p], [c])[0]["reward"] for p, c in zip(paths, PROMPTS)], abs=1e-5)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        inferencer([tmp_path / "missing.mp4"], ["x"])


def test_flow_factory_pointwise_form_with_keyword_batches(weighted_reward):
    # Videos of different lengths and sizes, as Flow-Factory's standardize_video_batch(output_type="pt") gives.
    videos = [torch.rand(t, 3, h, w, generator=torch.Generator().manual_seed(t)) for t, h, w in
              [(8, 32, 32), (20, 24, 40), (17, 40, 24)]]
    model = FlowFactoryReward(weighted_reward)
    batch_input = {"prompt": PROMPTS, "video": videos}
    output = model(**batch_input)
    rewards = torch.as_tensor(output.rewards if hasattr(output, "rewards") else output, device="cpu",
                              dtype=torch.float32)
    expected = weighted_reward(videos, PROMPTS)
    torch.testing.assert_close(rewards, expected.rewards, atol=1e-6, rtol=0)
    for i, aspect in enumerate(ASPECTS):
        torch.testing.assert_close(output.extra_info[aspect], expected.scores[:, i], atol=1e-6, rtol=0)
    images = [v[0] for v in videos]
    torch.testing.assert_close(model(prompt=PROMPTS, image=images).rewards,
                               weighted_reward([v[:1] for v in videos], PROMPTS).rewards, atol=1e-6, rtol=0)
    assert model.use_tensor_inputs and model.required_fields == ("prompt", "video")
    with pytest.raises(ValueError, match="needs video= .* or image="):
        model(prompt=PROMPTS)
    with pytest.raises(TypeError, match=r"image\[0\] must be a \(C, H, W\) tensor"):
        model(prompt=PROMPTS[:1], image=[np.zeros((32, 32, 3))])
