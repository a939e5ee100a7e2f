"""Trust the reward: agreement with human labels (`evaluate`), reward hacking between two runs
(`compare`), and how much a score moves under harmless changes to a video (`stability`).

Needs the `[eval]` extra (scipy, matplotlib).
"""

try:
    import matplotlib  # noqa: F401
    import scipy  # noqa: F401
except ImportError as error:
    raise ImportError(
        f"videoscore_reward.evaluation needs scipy and matplotlib ({error.name} is missing): "
        "pip install 'videoscore-reward[eval]'"
    ) from None

from .compare import Comparison, compare
from .evaluate import Evaluation, evaluate
from .stability import TRANSFORMS, StabilityResult, Transform, stability
from .tables import TableError

__all__ = [
    "TRANSFORMS",
    "Comparison",
    "Evaluation",
    "StabilityResult",
    "TableError",
    "Transform",
    "compare",
    "evaluate",
    "stability",
]
