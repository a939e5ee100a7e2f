"""What is known about each model family and each published checkpoint, stated once.

`FAMILIES` has one row per model family: its aspects and score scale, the frames its checkpoints
see when they do not say, the image processor settings of its published checkpoints and the file of
its query text. `CHECKPOINTS` has one row per published checkpoint. A new family is a new row of
each, not a new branch in the code that reads them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .aspects import ASPECTS, SCORE_RANGE
from .videoscore2.facts import VIDEOSCORE2

TINY_RANDOM = "tiny-random"
"""Model name that loads a freshly written tiny random checkpoint (offline, meaningless scores)."""

TINY_RANDOM_MARKER = "videoscore_reward_tiny_random"
"""Key set to true in the config.json of a tiny random checkpoint; the reward reads it back to say its
scores are meaningless."""


@dataclass(frozen=True)
class Family:
    """The facts every checkpoint of one model family shares."""

    name: str
    aspects: tuple[str, ...]
    """Aspect names in the order of the model's outputs."""
    score_range: tuple[float, float]
    """(worst, best) score of one aspect."""
    default_num_frames: int | None
    """Frames per video for a checkpoint that does not record its own (None: decided per video)."""
    image_processor: Mapping[str, Any]
    """Image processor settings of the published checkpoints (their preprocessor_config.json)."""
    image_seq_len: int | None
    """Tokens per image (frame) in the query (None: it follows the frame size)."""
    query_file: str
    """The package-data file (in `videoscore_reward.reward`) with the query text the model was trained with."""

    def image_processor_kwargs(self) -> dict[str, Any]:
        """`image_processor` as a fresh dict of keyword arguments for the image processor class."""
        return copy.deepcopy(dict(self.image_processor))


@dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint: its hub id, family and the frames per video it was trained with."""

    repo_id: str
    family: str
    num_frames: int | None


FAMILIES: Mapping[str, Family] = MappingProxyType({
    "videoscore": Family(
        name="videoscore",
        aspects=ASPECTS,
        score_range=SCORE_RANGE,
        default_num_frames=16,
        # VideoScore was trained without image splitting: one 64-token image per frame.
        image_processor=MappingProxyType(dict(
            do_image_splitting=False,
            size={"shortest_edge": 378, "longest_edge": 980},
            rescale_factor=1 / 255,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        )),
        image_seq_len=64,
        query_file="prompt_template.txt",
    ),
    # VideoScore2: every fact lives in its `VideoScore2Facts` table (frames by time, pixel bounds, chat
    # layout, answer layout, generation); this row repeats what the shared code reads.
    "videoscore2": Family(
        name="videoscore2",
        aspects=VIDEOSCORE2.aspects,
        score_range=VIDEOSCORE2.score_range,
        default_num_frames=None,  # 2 frames per second of video
        image_processor=MappingProxyType(dict(
            min_pixels=VIDEOSCORE2.min_pixels,
            max_pixels=VIDEOSCORE2.max_pixels,
            patch_size=VIDEOSCORE2.patch_size,
            temporal_patch_size=VIDEOSCORE2.temporal_patch_size,
            merge_size=VIDEOSCORE2.merge_size,
            image_mean=list(VIDEOSCORE2.image_mean),
            image_std=list(VIDEOSCORE2.image_std),
        )),
        image_seq_len=None,
        query_file="videoscore2/query_template.txt",
    ),
})
"""Model families by name."""

CHECKPOINTS: Mapping[str, Checkpoint] = MappingProxyType({
    checkpoint.repo_id: checkpoint
    for checkpoint in (
        Checkpoint("TIGER-Lab/VideoScore", "videoscore", 16),
        Checkpoint("TIGER-Lab/VideoScore-anno-only", "videoscore", 16),
        Checkpoint("TIGER-Lab/VideoScore-v1.1", "videoscore", 48),
        Checkpoint("TIGER-Lab/VideoScore2", "videoscore2", None),
    )
})
"""Published checkpoints by hub id."""

CHECKPOINT_FRAMES: dict[str, int] = {
    repo_id: checkpoint.num_frames for repo_id, checkpoint in CHECKPOINTS.items() if checkpoint.num_frames
}
"""Frames per video each published checkpoint was trained with."""


def find_checkpoint(name_or_path: str) -> Checkpoint | None:
    """The published checkpoint named by a hub id, a local folder of the same name, or a path in the
    Hugging Face cache; None for anything else."""
    if name_or_path in CHECKPOINTS:
        return CHECKPOINTS[name_or_path]
    parts = Path(name_or_path).parts
    for repo_id, checkpoint in CHECKPOINTS.items():
        cache_name = "models--" + repo_id.replace("/", "--")
        if cache_name in parts or (parts and parts[-1] == repo_id.split("/")[1]):
            return checkpoint
    return None


def is_tiny_random(config) -> bool:
    """Whether a loaded model config is that of a tiny random checkpoint (see `TINY_RANDOM_MARKER`)."""
    return bool(getattr(config, TINY_RANDOM_MARKER, False))
