import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_pipeline import tiny_animatediff_pipeline  # noqa: E402


@pytest.fixture
def tiny_pipe():
    return tiny_animatediff_pipeline()
