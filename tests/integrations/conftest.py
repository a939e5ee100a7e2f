import pytest

from videoscore_reward.testing.pipelines import tiny_pipeline


@pytest.fixture(scope="session")
def shared_pipeline():
    """`shared_pipeline(name)`: one tiny pipeline per family for the whole session. A test that changes
    its scheduler or components restores them (monkeypatch), or builds its own with `tiny_pipeline`."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = tiny_pipeline(name)
        return built[name]

    return get
