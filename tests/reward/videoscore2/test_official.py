"""Official mode (generation as vs2_inference.py) and the tolerant parser."""

import math
from types import SimpleNamespace

import pytest
import torch

from videoscore_reward.reward.videoscore2 import VideoScore2Reward, parse_scores

OFFICIAL = "visual quality: 3; \ntext-to-video alignment: 4, \nphysical/common-sense consistency: 2"


@pytest.mark.parametrize(
    "text, expected",
    [
        (OFFICIAL, [3, 4, 2]),
        ("(1) visual quality: 3\n(2) text-to-video alignment: 3\n(3) physical/common-sense consistency: 3\n", [3, 3, 3]),
        ("<think>\nvisual quality: 1 at first sight... text-to-video alignment: 1\n</think>\n\n"
         "(1) visual quality – clarity, smoothness, artifacts: 4\n(2) text-to-video alignment – fidelity to the "
         "prompt: 5\n(3) physical/common-sense consistency – naturalness and physics plausibility: 4", [4, 5, 4]),
        ("Visual quality: 3/5\nText-to-video alignment: 4/5\nPhysical/common-sense consistency: 2/5", [3, 4, 2]),
        ("**Visual Quality:** 4\n**Text-to-Video Alignment:** 2\n**Physical Consistency:** 5", [4, 2, 5]),
        ("physical/common-sense consistency: 1, visual quality: 5; text-to-video alignment: 2", [5, 2, 1]),  # reordered
        ("Sure! Here you go.\nvisual quality = 2.0\ntext to video alignment: 3.5\ncommon-sense consistency: 4\nBye.", [2, 3.5, 4]),
        ("visual quality: 3; text-to-video alignment: 4", [3, 4, None]),  # missing field
        ("visual quality: 7; text-to-video alignment: 35, physical/common-sense consistency: 0", [None] * 3),  # out of 1-5
        ("", [None] * 3),
    ],
)
def test_parser_variants(text, expected):
    parsed = parse_scores(text)
    assert parsed.scores == expected
    for score, offset in zip(parsed.scores, parsed.digit_offsets):
        assert (offset is None) == (score is None)
        if score is not None:
            assert text[offset] == str(int(score))


@pytest.fixture
def official(vs2_reward):
    return VideoScore2Reward(vs2_reward.model, vs2_reward.tokenizer, mode="official")


def frames(count=2):
    g = torch.Generator().manual_seed(5)
    return [torch.randint(0, 256, (4, 3, 56, 56), dtype=torch.uint8, generator=g) for _ in range(count)]


def test_official_mode_runs_end_to_end_and_never_raises_on_gibberish(official):
    out = official(frames(), ["a fox", "a cat"], do_sample=False, max_new_tokens=12)
    again = official(frames(), ["a fox", "a cat"], do_sample=False, max_new_tokens=12)
    assert out.texts == again.texts and len(out.texts) == 2  # greedy is deterministic
    # A random model writes no scores: every row says so, with NaN scores and rewards.
    assert all(e.startswith("no score for visual quality, text-to-video alignment") for e in out.errors)
    assert torch.isnan(out.scores).all() and torch.isnan(out.rewards).all()
    sampled = official(frames(), ["a fox", "a cat"], max_new_tokens=4)
    assert len(sampled.errors) == 2
    with pytest.raises(TypeError, match="apply to mode='official' only"):
        VideoScore2Reward(official.model, official.tokenizer)(frames(1), "x", do_sample=False)


def test_official_soft_score_from_a_known_generation(official, monkeypatch):
    """A fake generation with known step scores: the parsed digits, and the official soft score
    best * p_best / sum p, read at the answer's digits (not at the one in the reasoning)."""
    tok = official.tokenizer
    text = ("<think>\nvisual quality: 2 maybe\n</think>\n\n(1) visual quality – clarity, smoothness, artifacts: 4\n"
            "(2) text-to-video alignment: 3/5\n(3) physical/common-sense consistency: 5")
    generated = tok(text, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    digit_ids = [tok.convert_tokens_to_ids(d) for d in "12345"]
    vocab = len(tok)
    wanted = {4: [0.1, 0.1, 0.2, 0.6, 0.0], 3: [0.0, 0.3, 0.3, 0.2, 0.2], 5: [0.05, 0.05, 0.1, 0.3, 0.5]}
    steps = [torch.zeros(1, vocab) for _ in generated]
    lengths = [len(tok.decode(generated[: i + 1])) for i in range(len(generated))]
    score_chars = [text.index(": 4\n") + 2, text.index(": 3/5") + 2, text.index(": 5") + 2]
    positions = [next(i for i, n in enumerate(lengths) if n > c) for c in score_chars]
    assert [tok.decode([generated[i]]) for i in positions] == ["4", "3", "5"]
    for i, digit in zip(positions, [4, 3, 5]):
        logits = torch.full((vocab,), -math.inf)
        logits[digit_ids] = torch.tensor(wanted[digit]).log()
        steps[i] = logits[None]

    def fake_generate(**inputs):
        return SimpleNamespace(sequences=torch.cat([inputs["input_ids"], torch.tensor([generated])], 1), scores=tuple(steps))

    monkeypatch.setattr(official.model, "generate", fake_generate)
    out = official(frames(1), "a fox")
    assert out.errors == [None] and out.texts == [text]
    assert out.integer_scores.tolist() == [[4, 3, 5]]
    # 4 * 0.6; tie 0.3/0.3 -> the lower score, 2 * 0.3; 5 * 0.5
    torch.testing.assert_close(out.scores, torch.tensor([[2.4, 0.6, 2.5]]))
    torch.testing.assert_close(out.probs[0, 0], torch.tensor(wanted[4]))
    torch.testing.assert_close(out.rewards, out.scores.mean(1))
