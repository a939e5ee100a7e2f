"""The tiny random VideoScore2 checkpoint, written by `videoscore_reward.reward.videoscore2.tiny`."""

from ..reward.videoscore2.tiny import tiny_videoscore2_checkpoint

__all__ = ["tiny_videoscore2_checkpoint"]
