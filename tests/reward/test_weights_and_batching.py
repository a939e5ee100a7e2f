import numpy as np
import pytest
import torch

from videoscore_reward import ASPECTS, RewardOutput, VideoScoreReward
from videoscore_reward.reward.aspects import parse_weights, weighted_reward
from videoscore_reward.testing import make_frames


def test_aspect_order():
    assert ASPECTS == (
        "visual quality", "temporal consistency", "dynamic degree", "text-to-video alignment", "factual consistency"
    )


SCORES = torch.tensor([[1.0, 2.0, 3.0, 4.0, 2.5], [3.5, 1.5, 2.0, 1.0, 4.0]])


@pytest.mark.parametrize("normalize", ["raw", "unit"])
@pytest.mark.parametrize(
    "weights, vector",
    [
        (None, [1, 1, 1, 1, 1]),
        ({"visual quality": 1.0, "text-to-video alignment": 2.0}, [1, 0, 0, 2, 0]),
        ([0.5, 0, 1, 0, 3], [0.5, 0, 1, 0, 3]),
    ],
)
def test_weighted_reward_against_numpy(weights, vector, normalize):
    s = SCORES.numpy().astype(np.float64)
    if normalize == "unit":
        s = (s - 1) / 3
    w = np.array(vector, dtype=np.float64)
    expected = (s * w).sum(1) / w.sum()
    got = weighted_reward(SCORES, parse_weights(weights), normalize)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "weights, error, match",
    [
        ({"visual qualty": 1.0}, ValueError, r"Unknown aspect.*visual qualty"),
        ([1, 2, 3], ValueError, "needs 5 numbers"),
        ({"dynamic degree": -1.0}, ValueError, ">= 0"),
        ([0, 0, 0, 0, 0], ValueError, "must be > 0"),
        ([1, float("nan"), 1, 1, 1], ValueError, "finite"),
        ("visual quality", TypeError, "dict by aspect name"),
    ],
)
def test_bad_weights(weights, error, match):
    with pytest.raises(error, match=match):
        parse_weights(weights)


def test_bad_normalize(tiny_checkpoint_dir):
    with pytest.raises(ValueError, match="normalize must be 'raw'"):
        VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", normalize="zscore")


def test_reward_uses_weights_and_normalization(tiny_checkpoint_dir):
    reward = VideoScoreReward.from_pretrained(
        tiny_checkpoint_dir, device="cpu", weights={"visual quality": 1.0, "text-to-video alignment": 2.0}, normalize="unit"
    )
    out = reward(make_frames(4, 32, 32)[None], "p")
    s = out.scores[0].double()
    expected = ((s[0] - 1) / 3 + 2 * (s[3] - 1) / 3) / 3
    assert abs(out.rewards[0].item() - expected.item()) < 1e-5


def test_output_helpers():
    out = RewardOutput(scores=SCORES, rewards=torch.tensor([2.5, 2.4]))
    rows = out.to_dicts()
    assert rows[1] == pytest.approx({**dict(zip(ASPECTS, SCORES[1].tolist())), "reward": 2.4})
    frame = out.to_pandas()
    assert list(frame.columns) == [*ASPECTS, "reward"]
    assert frame["dynamic degree"].tolist() == [3.0, 2.0]
    assert len(out) == 2


def test_large_batches_are_split_and_keep_order(tiny_checkpoint_dir, monkeypatch):
    reward = VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", batch_size=2)
    videos = [make_frames(3 + i, 32, 32, seed=i) for i in range(5)]
    prompts = [f"prompt number {i}" for i in range(5)]
    expected = torch.cat([reward([v], [p]).scores for v, p in zip(videos, prompts)])

    seen = []
    forward = reward.model.forward
    monkeypatch.setattr(reward.model, "forward", lambda **kw: seen.append(kw["input_ids"].shape[0]) or forward(**kw))
    out = reward(videos, prompts)
    assert seen == [2, 2, 1]
    torch.testing.assert_close(out.scores, expected, atol=1e-4, rtol=0)
    assert len({tuple(row) for row in expected.tolist()}) == 5, "videos must score differently for the order check to mean anything"
