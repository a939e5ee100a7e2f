"""The shared reward interface: a model family with other aspects and another scale gets weights,
normalization, outputs, submit() and as_reward_fn() from `BaseReward` alone."""

import pytest
import torch

from videoscore_reward import BaseReward, RewardOutput
from videoscore_reward.reward.aspects import parse_weights


class MeanBrightness(BaseReward):
    """A stand-in family: three aspects on 1-5, each a fixed affine map of the mean brightness."""

    aspects = ("a", "b", "c")
    score_range = (1.0, 5.0)
    num_frames = None

    def __call__(self, videos, prompts, *, value_range=(0.0, 1.0)):
        prompts = self.check_prompts(prompts, len(videos))
        mean = videos.float().mean(dim=(1, 2, 3, 4))
        return self.output(torch.stack([1 + 4 * mean, 5 - 4 * mean, torch.full_like(mean, 3.0)], dim=1))


def test_weights_normalize_and_output_follow_the_family():
    reward = MeanBrightness(weights={"a": 1.0, "c": 3.0}, normalize="unit")
    videos = torch.stack([torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)])
    out = reward(videos, "x")
    assert out.aspects == ("a", "b", "c")
    expected_scores = torch.tensor([[1.0, 5.0, 3.0], [5.0, 1.0, 3.0]])
    torch.testing.assert_close(out.scores, expected_scores)
    unit = (expected_scores - 1) / 4
    torch.testing.assert_close(out.rewards, (unit[:, 0] * 1 + unit[:, 2] * 3) / 4)
    assert list(out.to_pandas().columns) == ["a", "b", "c", "reward"]
    assert out.to_dicts()[0] == {"a": 1.0, "b": 5.0, "c": 3.0, "reward": pytest.approx(0.375)}


def test_reward_fn_and_submit_carry_the_family_aspects():
    reward = MeanBrightness()
    videos = torch.rand(3, 2, 3, 4, 4)
    rewards, info = reward.as_reward_fn()(videos, ["p"] * 3, None)
    direct = reward(videos, ["p"] * 3)
    torch.testing.assert_close(rewards, direct.rewards)
    assert set(info) == {"scores", "a", "b", "c"}
    torch.testing.assert_close(info["b"], direct.scores[:, 1])
    torch.testing.assert_close(reward.submit(videos, "p").result().scores, direct.scores)


def test_concat_refuses_mixed_aspects():
    one = RewardOutput(torch.ones(1, 3), torch.ones(1), aspects=("a", "b", "c"))
    other = RewardOutput(torch.ones(1, 5), torch.ones(1))
    with pytest.raises(ValueError, match="different aspects"):
        RewardOutput.concat([one, other])


def test_unknown_normalize_names_the_family_scale():
    with pytest.raises(ValueError, match=r"'raw' \(1-5 scale\) or 'unit' \(\(s-1\)/4"):
        MeanBrightness(normalize="z")


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1e39, 1, 1], "finite float32"),          # inf once it is float32
        ([2e38] * 3, "sum to more than float32"),  # each finite, the sum is not
        ([1e-46, 0, 0], "must be > 0 in float32"),  # underflows to 0
        ([float("nan"), 1, 1], "finite float32"),
        ([-1, 1, 1], "finite float32"),
        (["1", 1, 1], "weight of 'a' must be a number"),
        ([1, 1], "needs 3 numbers"),
        ({"d": 1.0}, r"Unknown aspect\(s\) in weights: \['d'\]"),
    ],
)
def test_weights_are_checked_as_float32(weights, message):
    with pytest.raises((ValueError, TypeError), match=message):
        parse_weights(weights, ("a", "b", "c"))


@pytest.mark.parametrize("batch_size, error, message", [
    (2.5, TypeError, r"batch_size must be an int, got 2.5"),
    (True, TypeError, r"batch_size must be an int"),
    (0, ValueError, r"batch_size must be >= 1, got 0"),
])
def test_batch_size_must_be_a_positive_int(batch_size, error, message):
    with pytest.raises(error, match=message):
        MeanBrightness(batch_size=batch_size)
