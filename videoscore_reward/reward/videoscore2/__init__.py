"""VideoScore2 (TIGER-Lab, 2025): a Qwen2.5-VL-7B fine-tune scoring three aspects on 1-5.

Only the facts table is imported with the package: `reward.checkpoints` reads it, and the scorer
reads `reward.checkpoints`, so the rest loads on first use (PEP 562).
"""

from importlib import import_module

from .facts import VIDEOSCORE2, VideoScore2Facts

_LAZY = {
    "TINY_RANDOM_VIDEOSCORE2": "scorer",
    "VideoScore2Reward": "scorer",
    "VideoScore2Model": "model",
    "VideoScore2Output": "output",
    "parse_scores": "parse",
}

__all__ = ["VIDEOSCORE2", "VideoScore2Facts", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
