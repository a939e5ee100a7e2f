import os

# Nothing in the tests may reach the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from videoscore_reward import VideoScoreReward  # noqa: E402
from videoscore_reward.testing import tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory):
    """A tiny random VideoScore checkpoint (16 frames) written once per test session."""
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny-videoscore"))


@pytest.fixture(scope="session")
def tiny_reward(tiny_checkpoint_dir):
    """The tiny checkpoint loaded through `VideoScoreReward.from_pretrained` on CPU, float32."""
    return VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu")
