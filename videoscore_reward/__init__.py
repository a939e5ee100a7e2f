"""VideoScore as a reward for text-to-video fine-tuning.

    from videoscore_reward import VideoScoreReward
    reward = VideoScoreReward.from_pretrained("TIGER-Lab/VideoScore-v1.1")
    out = reward(videos, prompts)   # videos: float [B, T, C, H, W] in [0, 1]
    out.scores                      # float32 [B, 5] on the 1-4 scale, in ASPECTS order
    out.rewards                     # float32 [B]
"""

# The public API is the reward core's; integrations are imported from their own modules so their
# optional dependencies stay optional.
from ._version import __version__  # noqa: F401
from .reward import *  # noqa: F403
from .reward import __all__ as _reward_all
from .serve import RemoteReward, RemoteRewardError

__all__ = [*_reward_all, "RemoteReward", "RemoteRewardError"]
