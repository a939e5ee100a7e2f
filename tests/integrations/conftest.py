import pytest

from videoscore_reward.testing.pipelines import tiny_animatediff_pipeline


@pytest.fixture
def tiny_pipe():
    return tiny_animatediff_pipeline()
