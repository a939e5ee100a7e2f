"""`videoscore_reward.files`: the one decode-and-score path of the CLI and the app."""

import warnings

import pytest
import torch

from videoscore_reward import load_video
from videoscore_reward.files import read_frames, score_batch
from videoscore_reward.reward import VideoLoadError
from videoscore_reward.testing import make_frames, write_test_video


class FailsOnPrompt:
    """The tiny reward, except that any call with the prompt "boom" in it raises."""

    def __init__(self, reward):
        self._reward = reward
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self._reward, name)

    def __call__(self, videos, prompts, **kwargs):
        self.calls.append(len(videos))
        if "boom" in prompts:
            raise RuntimeError("boom prompt")
        return self._reward(videos, prompts, **kwargs)


def test_read_frames_equals_load_video_and_reports_bad_files_as_values(tmp_path):
    good = write_test_video(tmp_path / "good.mp4", 12, 32, 32)
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    read = read_frames(good, 8)
    assert read.error is None and read.damage is None
    assert torch.equal(read.frames, load_video(good, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a bad file is a value, never a warning or an exception
        failed = read_frames(bad, 8)
    assert failed.frames is None
    assert isinstance(failed.error, VideoLoadError)
    assert "bad.mp4 is not a readable video file" in str(failed.error)


def test_score_batch_scores_the_rest_when_one_video_fails(tiny_reward):
    videos = [make_frames(4, 32, 32, seed=s) for s in range(3)]
    prompts = ["a cat", "boom", "a dog"]
    reward = FailsOnPrompt(tiny_reward)
    outcomes = score_batch(reward, videos, prompts)
    assert reward.calls == [3, 1, 1, 1]  # the batch, then one by one
    with pytest.raises(RuntimeError, match="boom prompt"):
        raise outcomes[1]
    alone = tiny_reward([videos[0], videos[2]], ["a cat", "a dog"])
    torch.testing.assert_close(outcomes[0].scores[0], alone.scores[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(outcomes[2].rewards[0], alone.rewards[1], rtol=0, atol=1e-5)


def test_score_batch_of_a_good_batch_is_one_call(tiny_reward):
    videos = [make_frames(4, 32, 32, seed=s) for s in range(2)]
    reward = FailsOnPrompt(tiny_reward)
    outcomes = score_batch(reward, videos, ["a", "b"])
    assert reward.calls == [2]
    expected = tiny_reward(videos, ["a", "b"])
    assert torch.equal(torch.cat([o.scores for o in outcomes]), expected.scores)
    assert score_batch(reward, [], []) == []
