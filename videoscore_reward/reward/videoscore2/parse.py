"""Reading VideoScore2's three scores out of generated text, tolerantly.

The official regex (`visual quality:\\s*(\\d+).*?text-to-video alignment:...`) needs all three labels in
order, each followed by its number, and misses what the model often writes (VideoScore2 issue #7):
"(1) visual quality – clarity, smoothness, artifacts: 4", "Visual quality: 3/5", "**Visual Quality:** 4",
fields in another order. This parser looks for each aspect on its own, in the answer after the last
`</think>` (so scores mentioned while reasoning do not count) and, where the answer has none, in the
whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Label spellings per aspect, in `VideoScore2Facts.aspects` order.
_LABELS = (
    r"visual[\s_-]*quality",
    r"(?:text[\s_-]*to[\s_-]*video|t2v|text)[\s_-]*alignment",
    r"(?:physical\s*/\s*common[\s_-]*sense|physical|common[\s_-]*sense)[\s_-]*consistency",
)
# After the label: an optional descriptor ("– clarity, smoothness, artifacts"), markdown, then ":" or "="
# (or just spaces), then the score 1-5, optionally "x.0" or "x/5". The digit group is the score token.
_SCORE = r"(?:\s*[-–—][^:\n=]{0,80})?[\s*_`]*[:=]?[\s*_`]*(?P<digit>[1-5])(?P<fraction>\.\d+)?(?:\s*/\s*5(?:\.0)?)?(?![\d.]*\d)"
_PATTERNS = tuple(re.compile(label + _SCORE, re.IGNORECASE) for label in _LABELS)


@dataclass
class ParsedScores:
    """scores: one float per aspect or None; digit_offsets: character offset of each score's first digit."""

    scores: list[float | None]
    digit_offsets: list[int | None]

    @property
    def missing(self) -> list[int]:
        return [i for i, s in enumerate(self.scores) if s is None]


def parse_scores(text: str) -> ParsedScores:
    """The three scores (visual quality, text-to-video alignment, physical/common-sense consistency)."""
    cut = text.rfind("</think>")
    answer_start = cut + len("</think>") if cut >= 0 else 0
    scores: list[float | None] = []
    offsets: list[int | None] = []
    for pattern in _PATTERNS:
        match = pattern.search(text, answer_start) or (pattern.search(text) if answer_start else None)
        if match is None:
            scores.append(None)
            offsets.append(None)
            continue
        scores.append(float(match.group("digit") + (match.group("fraction") or "")))
        offsets.append(match.start("digit"))
    return ParsedScores(scores, offsets)


def describe_failure(parsed: ParsedScores, aspects: tuple[str, ...], text: str) -> str:
    """A one-line error naming the aspects without a score and quoting the end of the text."""
    names = ", ".join(aspects[i] for i in parsed.missing)
    tail = " ".join(text.split())[-120:]
    return f"no score for {names} in the generated text (ends: {tail!r})" if tail else f"no score for {names}: the model generated no text"
