import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from videoscore_reward import ASPECTS, VideoScoreReward
from videoscore_reward.integrations.rl import multi_reward

PROMPTS = ["a cat", "a dog", "a red fox"]


def videos(count=3, frames=4, seed=0):
    return torch.rand(count, frames, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def brightness(videos, prompts, metadata):
    return videos.mean(dim=tuple(range(1, videos.ndim))).tolist(), {"mean": videos.mean()}


def test_reward_fn_returns_the_rewards_and_per_aspect_scores(tiny_reward):
    batch = videos()
    direct = tiny_reward(batch, PROMPTS)
    fn = tiny_reward.as_reward_fn()
    rewards, info = fn(batch, tuple(PROMPTS), ({}, {}, {}))  # TRL passes tuples
    torch.testing.assert_close(rewards, direct.rewards, atol=1e-5, rtol=0)
    assert rewards.shape == (3,) and rewards.dtype == torch.float32
    torch.testing.assert_close(info["scores"], direct.scores, atol=1e-5, rtol=0)
    for i, aspect in enumerate(ASPECTS):
        torch.testing.assert_close(info[aspect], direct.scores[:, i], atol=1e-5, rtol=0)
    assert torch.equal(fn.weights, tiny_reward.weights)


def test_images_are_one_frame_videos(tiny_reward):
    images = videos(frames=1)[:, 0]
    rewards, info = tiny_reward.as_reward_fn()(images, PROMPTS, None)
    torch.testing.assert_close(info["scores"], tiny_reward(images[:, None], PROMPTS).scores, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"videos must be a float tensor \[B, T, C, H, W\].*got \(3, 32, 32\)"):
        tiny_reward.as_reward_fn()(images[0], PROMPTS, None)


def test_value_range_is_passed_on(tiny_reward):
    batch = videos()
    rewards, _ = tiny_reward.as_reward_fn(value_range=(-1, 1))(batch * 2 - 1, PROMPTS, None)
    torch.testing.assert_close(rewards, tiny_reward(batch, PROMPTS).rewards, atol=1e-5, rtol=0)


def test_asynchronous_reward_fn_returns_futures(tiny_reward):
    batch = videos()
    rewards, info = tiny_reward.as_reward_fn(asynchronous=True)(batch, PROMPTS, None)
    assert isinstance(rewards, Future) and isinstance(info, Future)
    direct = tiny_reward(batch, PROMPTS)
    torch.testing.assert_close(rewards.result(), direct.rewards, atol=1e-5, rtol=0)
    torch.testing.assert_close(info.result()["scores"], direct.scores, atol=1e-5, rtol=0)
    bad_rewards, bad_info = tiny_reward.as_reward_fn(asynchronous=True)(batch, PROMPTS[:2], None)
    for future in (bad_rewards, bad_info):
        with pytest.raises(ValueError, match="Got 2 prompts for 3 videos"):
            future.result()


def test_submit_keeps_order_uses_one_worker_and_raises_at_result(tiny_reward, monkeypatch):
    threads = []
    original = VideoScoreReward.__call__

    def recording(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VideoScoreReward, "__call__", recording)
    batches = [videos(seed=s) for s in range(3)]
    futures = [tiny_reward.submit(batch, PROMPTS) for batch in batches]
    failing = tiny_reward.submit(batches[0], PROMPTS[:1] * 2)
    results = [future.result() for future in futures]
    with pytest.raises(ValueError, match="Got 2 prompts for 3 videos"):
        failing.result()
    assert len(set(threads)) == 1 and threads[0].startswith("videoscore-reward")
    for batch, result in zip(batches, results):
        torch.testing.assert_close(result.scores, original(tiny_reward, batch, PROMPTS).scores, atol=1e-5, rtol=0)


def test_multi_reward_weights_and_names(tiny_reward):
    batch = videos()
    fn = tiny_reward.as_reward_fn()
    combined = multi_reward({fn: 2.0, brightness: -0.5})
    rewards, info = combined(batch, PROMPTS, None)
    expected = 2.0 * tiny_reward(batch, PROMPTS).rewards + -0.5 * batch.mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(rewards, expected, atol=1e-5, rtol=0)
    assert set(info) == {"videoscore/reward", "videoscore/scores", *(f"videoscore/{a}" for a in ASPECTS),
                         "brightness/reward", "brightness/mean"}
    torch.testing.assert_close(info["brightness/reward"], batch.mean(dim=(1, 2, 3, 4)))

    def other(videos, prompts, metadata):
        return torch.ones(len(prompts)), {}

    other.__name__ = "brightness"
    twice = multi_reward({brightness: 1.0, other: 1.0})
    assert "brightness_2/reward" in twice(batch, PROMPTS, None)[1]


def test_multi_reward_errors():
    with pytest.raises(ValueError, match="at least one"):
        multi_reward({})
    with pytest.raises(ValueError, match="weight of 'brightness' must be a finite number"):
        multi_reward({brightness: float("nan")})
    with pytest.raises(TypeError, match="keys must be reward functions"):
        multi_reward({"brightness": 1.0})

    def scalar(videos, prompts, metadata):
        return torch.tensor(1.0), {}

    with pytest.raises(ValueError, match=r"'scalar' returned rewards of shape \(\), expected \(3,\)"):
        multi_reward({scalar: 1.0})(videos(), PROMPTS, None)


def test_passes_trl_ddpo_compute_rewards(tiny_reward):
    """Call our reward_fn the way TRL's DDPOTrainer.compute_rewards does (trl <= 0.23), sync and async."""
    trl = pytest.importorskip("trl", reason="trl==0.23.1 (the last release with DDPOTrainer) is not installed")
    if not hasattr(trl, "DDPOTrainer"):
        pytest.skip(f"trl {trl.__version__} has no DDPOTrainer (removed in 0.24); install trl==0.23.1 for this check")
    from trl import DDPOTrainer

    images = videos(count=4, frames=1)[:, 0]  # TRL hands over images [B, C, H, W] in [0, 1]
    pairs = [[images[:2], ("a cat", "a dog"), ({}, {})], [images[2:], ("a fox", "a cow"), ({}, {})]]
    direct = tiny_reward(images[:, None], ["a cat", "a dog", "a fox", "a cow"])
    for is_async, fn in ((False, tiny_reward.as_reward_fn()), (True, tiny_reward.as_reward_fn(asynchronous=True))):
        trainer = SimpleNamespace(reward_fn=fn, accelerator=SimpleNamespace(device=torch.device("cpu")),
                                  executor=ThreadPoolExecutor(max_workers=2))
        rewards, metadata = DDPOTrainer.compute_rewards(trainer, pairs, is_async=is_async)
        torch.testing.assert_close(torch.cat(rewards), direct.rewards, atol=1e-5, rtol=0)  # what step() does next
        torch.testing.assert_close(torch.cat([m["scores"] for m in metadata]), direct.scores, atol=1e-5, rtol=0)
