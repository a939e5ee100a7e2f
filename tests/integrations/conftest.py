import pytest
from videoscore_reward.testing.pipelines import tiny_animatediff_pipeline, tiny_pipeline


@pytest.fixture
def tiny_pipe():
    return tiny_animatediff_pipeline()


@pytest.fixture(scope="session")
def shared_pipeline():
    """`shared_pipeline(name)`: one tiny pipeline per family for the whole session (do not change its
    scheduler or components: build your own with `tiny_pipeline` for that)."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = tiny_pipeline(name)
        return built[name]

    return get
