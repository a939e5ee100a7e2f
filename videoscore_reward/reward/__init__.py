"""Everything that turns frames into VideoScore scores."""

from .aspects import ASPECTS, SCORE_RANGE
from .base import BaseReward
from .checkpoints import CHECKPOINT_FRAMES, TINY_RANDOM
from .model import VideoScoreModel
from .output import RewardOutput
from .reward_fn import RewardFn, VideoScoreRewardFn
from .sampling import sample_indices
from .scorer import VideoScoreReward
from .video import VideoLoadError, load_video

__all__ = [
    "ASPECTS",
    "CHECKPOINT_FRAMES",
    "SCORE_RANGE",
    "TINY_RANDOM",
    "BaseReward",
    "RewardFn",
    "RewardOutput",
    "VideoLoadError",
    "VideoScoreModel",
    "VideoScoreReward",
    "VideoScoreRewardFn",
    "load_video",
    "sample_indices",
]
