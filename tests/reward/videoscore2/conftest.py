import pytest

from videoscore_reward.reward.videoscore2 import VideoScore2Reward
from videoscore_reward.testing.videoscore2 import tiny_videoscore2_checkpoint


@pytest.fixture(scope="session")
def vs2_checkpoint(tmp_path_factory):
    """A tiny random VideoScore2 checkpoint, written once per session."""
    return tiny_videoscore2_checkpoint(tmp_path_factory.mktemp("tiny-videoscore2"))


@pytest.fixture(scope="session")
def vs2_reward(vs2_checkpoint):
    """It loaded through `VideoScore2Reward.from_pretrained`, forced mode, CPU, float32."""
    return VideoScore2Reward.from_pretrained(vs2_checkpoint, device="cpu", batch_size=4)
