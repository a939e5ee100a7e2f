"""The family and checkpoint tables: the one place their facts are stated."""

import json

from videoscore_reward import ASPECTS, CHECKPOINT_FRAMES, SCORE_RANGE, VideoScoreReward
from videoscore_reward.reward.checkpoints import CHECKPOINTS, FAMILIES, TINY_RANDOM_MARKER, is_tiny_random


def test_tiny_checkpoint_is_written_with_the_family_settings(tiny_checkpoint_dir, tiny_reward):
    family = FAMILIES["videoscore"]
    saved = json.loads((tiny_checkpoint_dir / "processor_config.json").read_text())
    for key, value in family.image_processor.items():
        assert saved["image_processor"][key] == value, key
    assert saved["image_seq_len"] == family.image_seq_len
    config = json.loads((tiny_checkpoint_dir / "config.json").read_text())
    assert config[TINY_RANDOM_MARKER] is True and is_tiny_random(tiny_reward.model.config)
    settings = tiny_reward.image_settings
    assert (settings.shortest_edge, settings.longest_edge) == (378, 980)
    assert tiny_reward.processor.image_seq_len == family.image_seq_len == 64


def test_the_reward_takes_its_facts_from_its_family_row():
    family = FAMILIES["videoscore"]
    assert VideoScoreReward.aspects == family.aspects == ASPECTS
    assert VideoScoreReward.score_range == family.score_range == SCORE_RANGE
    assert CHECKPOINT_FRAMES == {"TIGER-Lab/VideoScore": 16, "TIGER-Lab/VideoScore-anno-only": 16, "TIGER-Lab/VideoScore-v1.1": 48}
    assert all(c.family in FAMILIES for c in CHECKPOINTS.values())
