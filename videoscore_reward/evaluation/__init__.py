"""Trust the reward: agreement with human labels (`evaluate`), reward hacking between two runs
(`compare`), and how much a score moves under harmless changes to a video (`stability`).

Needs the `[eval]` extra (scipy, matplotlib).
"""

from ..extras import require

require("eval", "videoscore_reward.evaluation")  # one clear line before scipy/matplotlib imports fail

from .compare import Comparison, compare  # noqa: E402
from .evaluate import Evaluation, evaluate  # noqa: E402
from .stability import TRANSFORMS, StabilityResult, Transform, stability  # noqa: E402
from .tables import TableError  # noqa: E402

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
