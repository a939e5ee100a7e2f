"""VideoScore as a reward for text-to-video fine-tuning.

    from videoscore_reward import VideoScoreReward
    reward = VideoScoreReward.from_pretrained("TIGER-Lab/VideoScore-v1.1")
    out = reward(videos, prompts)   # videos: float [B, T, C, H, W] in [0, 1]
    out.scores                      # float32 [B, 5] on the 1-4 scale, in ASPECTS order
    out.rewards                     # float32 [B]
"""

from .reward import (
    ASPECTS,
    CHECKPOINT_FRAMES,
    SCORE_RANGE,
    TINY_RANDOM,
    RewardOutput,
    VideoLoadError,
    VideoScoreModel,
    VideoScoreReward,
    load_video,
    sample_indices,
)

__version__ = "0.1.0"

__all__ = [
    "ASPECTS",
    "CHECKPOINT_FRAMES",
    "SCORE_RANGE",
    "TINY_RANDOM",
    "RewardOutput",
    "VideoLoadError",
    "VideoScoreModel",
    "VideoScoreReward",
    "load_video",
    "sample_indices",
]
