"""VideoScore2 (TIGER-Lab, 2025): a Qwen2.5-VL-7B fine-tune scoring three aspects on 1-5."""

from .facts import VIDEOSCORE2, VideoScore2Facts
from .model import VideoScore2Model
from .output import VideoScore2Output
from .parse import parse_scores
from .scorer import TINY_RANDOM_VIDEOSCORE2, VideoScore2Reward

__all__ = [
    "TINY_RANDOM_VIDEOSCORE2",
    "VIDEOSCORE2",
    "VideoScore2Facts",
    "VideoScore2Model",
    "VideoScore2Output",
    "VideoScore2Reward",
    "parse_scores",
]
