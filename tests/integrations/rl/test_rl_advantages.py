import numpy as np
import pytest
import torch

from videoscore_reward import ASPECTS
from videoscore_reward.integrations.rl import PerPromptStatTracker, group_advantages, per_aspect_advantages


def reference_tracker(batches, buffer_size, min_count, eps=1e-6):
    """Straightforward re-implementation of the documented formula, with plain lists."""
    history, out = {}, []
    for prompts, rewards in batches:
        rewards = np.asarray(rewards, dtype=np.float64)
        advantages = np.zeros_like(rewards)
        for prompt in set(prompts):
            mine = [r for p, r in zip(prompts, rewards) if p == prompt]
            history[prompt] = (history.get(prompt, []) + mine)[-buffer_size:]
        for i, (prompt, reward) in enumerate(zip(prompts, rewards)):
            pool = np.array(history[prompt]) if len(history[prompt]) >= min_count else rewards
            advantages[i] = (reward - pool.mean(axis=0)) / (pool.std(axis=0) + eps)
        out.append(advantages)
    return out


def test_stat_tracker_matches_the_formula():
    rng = np.random.default_rng(0)
    names = ["cat", "dog", "fox"]
    batches = [([names[i] for i in rng.integers(0, 3, 6)], rng.normal(size=6) * 3 + 1) for _ in range(8)]
    tracker = PerPromptStatTracker(buffer_size=5, min_count=3)
    expected = reference_tracker(batches, buffer_size=5, min_count=3)
    for (prompts, rewards), reference in zip(batches, expected):
        np.testing.assert_allclose(tracker.update(prompts, torch.tensor(rewards)), reference, rtol=1e-6, atol=1e-9)
    assert all(entry["count"] == 5 for entry in tracker.stats().values())
    tracker.clear()
    assert tracker.stats() == {}


def test_stat_tracker_falls_back_to_batch_statistics():
    tracker = PerPromptStatTracker(buffer_size=4, min_count=4)
    rewards = np.array([1.0, 2.0, 3.0, 10.0])
    first = tracker.update(["a", "a", "b", "b"], rewards)  # two each: below min_count
    np.testing.assert_allclose(first, (rewards - rewards.mean()) / (rewards.std() + 1e-6))
    second = tracker.update(["a", "a", "b", "b"], rewards)  # now four each: own statistics
    np.testing.assert_allclose(second[:2], (rewards[:2] - 1.5) / (0.5 + 1e-6))
    np.testing.assert_allclose(second[2:], (rewards[2:] - 6.5) / (3.5 + 1e-6))


def test_stat_tracker_normalizes_columns_independently():
    rng = np.random.default_rng(1)
    prompts = ["a", "b", "a", "b", "a", "b"]
    scores = rng.uniform(1, 4, size=(6, 5))
    together = PerPromptStatTracker(buffer_size=None, min_count=1).update(prompts, scores)
    for k in range(5):
        alone = PerPromptStatTracker(buffer_size=None, min_count=1).update(prompts, scores[:, k])
        np.testing.assert_allclose(together[:, k], alone)


def test_per_aspect_advantages_match_numpy():
    rng = np.random.default_rng(2)
    prompts = ["cat"] * 4 + ["dog"] * 4
    scores = rng.uniform(1, 4, size=(8, 5))
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5])
    expected = np.zeros(8)
    for prompt in ("cat", "dog"):
        rows = np.array([p == prompt for p in prompts])
        z = (scores[rows] - scores[rows].mean(axis=0)) / (scores[rows].std(axis=0) + 1e-6)
        expected[rows] = (z * weights).sum(axis=1) / weights.sum()
    np.testing.assert_allclose(per_aspect_advantages(prompts, torch.tensor(scores), weights), expected, rtol=1e-6)
    # The same weights by aspect name (those left out weigh 0), as everywhere else in the package.
    by_name = dict(zip(ASPECTS, weights.tolist()))
    del by_name[ASPECTS[1]]
    np.testing.assert_allclose(per_aspect_advantages(prompts, scores, by_name), expected, rtol=1e-6)
    np.testing.assert_array_equal(group_advantages(scores, prompts, by_name), group_advantages(scores, prompts, weights))


def test_dict_weights_follow_the_given_aspects():
    scores = np.array([[1.0, 3.0, 2.0], [2.0, 1.0, 2.5], [3.0, 2.0, 1.0]])
    three = ("visual", "alignment", "physics")  # another family's aspects, e.g. reward.aspects
    np.testing.assert_allclose(per_aspect_advantages(["p"] * 3, scores, {"alignment": 1.0}, aspects=three),
                               per_aspect_advantages(["p"] * 3, scores, [0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"Unknown aspect\(s\) in weights: \['style'\]"):
        per_aspect_advantages(["p"] * 3, scores, {"style": 1.0}, aspects=three)
    with pytest.raises(ValueError, match=r"weights by name need the names of the 3 score columns: pass aspects=reward.aspects"):
        per_aspect_advantages(["p"] * 3, scores, {"visual": 1.0})


def test_per_aspect_normalization_lets_the_hard_aspect_count():
    # Aspect 0 varies a lot and aspect 1 barely, with equal weights. A weighted sum ranks by aspect 0
    # only; normalizing each aspect first gives both the same say.
    scores = np.array([[1.0, 2.00], [4.0, 1.90], [2.5, 2.05]])
    prompts = ["p"] * 3
    plain = scores.mean(axis=1)
    per_aspect = per_aspect_advantages(prompts, scores, [1.0, 1.0])
    assert np.argmax(plain) == 1
    assert np.argmax(per_aspect) == 2  # the only sample above the group mean on both aspects


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"buffer_size \(4\) must be >= min_count \(8\)"):
        PerPromptStatTracker(buffer_size=4, min_count=8)
    with pytest.raises(ValueError, match=r"rewards must be \[B\] or \[B, K\] with B = 2 prompts, got shape \(3,\)"):
        PerPromptStatTracker().update(["a", "b"], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"scores of 5 aspects need 5 weights \(or a dict by aspect name\), got weights of shape \(2,\)"):
        per_aspect_advantages(["a"], np.ones((1, 5)), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"scores must be \[B, K\], got shape \(5,\)"):
        per_aspect_advantages(["a"], np.ones(5), [1.0] * 5)
    with pytest.raises(ValueError, match="weights must be >= 0 with a positive sum"):
        per_aspect_advantages(["a"], np.ones((1, 2)), [0.0, 0.0])


def test_group_advantages_normalise_within_each_group():
    rewards = np.array([1.0, 3.0, 10.0, 10.0, 0.0, 2.0, 4.0])
    groups = [7, 7, 2, 2, 5, 5, 5]
    advantages = group_advantages(rewards, groups, eps=0.0)
    # group 7: mean 2, std 1; group 2: std 0 -> 0; group 5: mean 2, std sqrt(8/3)
    np.testing.assert_allclose(advantages, [-1, 1, 0, 0, -2 / np.sqrt(8 / 3), 0, 2 / np.sqrt(8 / 3)], atol=1e-12)


def test_per_aspect_group_advantages_are_weighted_after_normalising():
    scores = np.array([[1.0, 100.0], [2.0, 300.0], [5.0, 0.0], [5.0, 1.0]])
    groups = torch.tensor([0, 0, 1, 1])
    advantages = group_advantages(scores, groups, weights=[3.0, 1.0], eps=0.0)
    # group 0: both aspects give [-1, 1]; group 1: aspect 0 has std 0 (-> 0), aspect 1 gives [-1, 1]
    np.testing.assert_allclose(advantages, [-1, 1, -0.25, 0.25], atol=1e-12)
    with pytest.raises(ValueError, match="need K = 2 weights"):
        group_advantages(scores, groups)
    with pytest.raises(ValueError, match="one group id per row"):
        group_advantages(scores, [0, 1])
