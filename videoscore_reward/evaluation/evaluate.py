"""`evaluate`: does the reward agree with human judgement on these videos?

Per-aspect correlation with human ratings and pairwise accuracy on human preferences, as
VideoScore-Bench measures them (Spearman on VideoFeedback-test; pairwise accuracy on GenAI-Bench and
VBench, predicting a preference from the mean of the aspect scores).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import plots
from .metrics import CORRELATIONS, correlations, pairwise_accuracy
from .tables import ScoredRun, TableError, is_pairs_table, read_pairs, read_ratings, read_scores, read_table

MEAN_OF_ASPECTS = "mean"


@dataclass
class Evaluation:
    """What `evaluate` found. `report` is report.json's content: {"aspects": {ASPECT: {...}},
    "pairwise": {...}}, each key present only when the labels allow it. `matched` holds, per aspect,
    the (model scores, human ratings) float arrays [n] the correlations were computed on."""

    report: dict
    matched: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def summary_markdown(self, plot_files: Sequence[str] = ()) -> str:
        lines = ["# Reward against human labels", ""]
        aspects = self.report.get("aspects", {})
        if aspects:
            lines += ["| aspect | n | Spearman | Kendall | Pearson |", "|---|---:|---|---|---|"]
            for aspect, row in aspects.items():
                cells = [_with_interval(row[name], row[f"{name}_ci95"]) for name in CORRELATIONS]
                lines.append(f"| {aspect} | {row['n']} | " + " | ".join(cells) + " |")
            lines.append("")
        pairwise = self.report.get("pairwise")
        if pairwise:
            lines += [
                f"Pairwise accuracy ({self.settings['pair_score']}, tie margin {pairwise['tie_margin']}):",
                f"- with ties: {_with_interval(pairwise['accuracy_with_ties'], pairwise['accuracy_with_ties_ci95'])}"
                f" over {pairwise['n_pairs']} pairs",
                f"- without ties: {_with_interval(pairwise['accuracy_without_ties'], pairwise['accuracy_without_ties_ci95'])}"
                f" over {pairwise['n_pairs_without_ties']} pairs",
                "",
            ]
        lines.append(f"Intervals: 95% percentile bootstrap, {self.settings['n_resamples']} resamples, seed {self.settings['seed']}.")
        lines += [f"Note: {note}" for note in self.notes]
        lines += [""] + [f"![{Path(name).stem}]({name})" for name in plot_files]
        return "\n".join(lines) + "\n"

    def write(self, out: str | os.PathLike) -> list[Path]:
        """Write report.json, summary.md and the plots (scatter_<aspect>.png, calibration.png) to `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = [plots.scatter_with_fit(*self.matched[a], a, out / f"scatter_{plots.slug(a)}.png") for a in self.matched]
        if self.matched:
            written.append(plots.calibration_curve(self.matched, out / "calibration.png"))
        report = out / "report.json"
        report.write_text(json.dumps(self.report, indent=2) + "\n")
        summary = out / "summary.md"
        summary.write_text(self.summary_markdown([p.name for p in written]))
        return [report, summary, *written]


def _with_interval(value, interval) -> str:
    if value is None:
        return "undefined"
    low, high = interval
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")


def _ratings_report(run: ScoredRun, path: Path, table, evaluation: Evaluation, n_resamples: int, seed: int) -> dict:
    ratings = read_ratings(path, table)
    rated = [c for c in ratings.columns if c in run.aspects]
    text = [c for c in table.columns if c in run.aspects and c not in rated]
    if text:
        raise TableError(f"{path}: column {text[0]!r} is not numeric, expected one rating per video.")
    if not rated:
        raise TableError(
            f"{path} rates {list(ratings.columns)}, none of which is an aspect of {run.path} ({run.aspects})."
        )
    common = ratings.index.intersection(run.table.index)
    if common.empty:
        raise TableError(
            f"none of the {len(ratings)} videos rated in {path} is scored in {run.path} "
            f"(e.g. {ratings.index[0]!r} vs {run.table.index[0]!r}); video_name must match."
        )
    if len(common) < len(ratings):
        evaluation.notes.append(f"{len(ratings) - len(common)} of the {len(ratings)} rated videos have no score.")
    report = {}
    for aspect in tqdm(rated, desc="correlations", unit="aspect", leave=False):
        labels = ratings.loc[common, aspect].to_numpy(float)
        scores = run.table.loc[common, aspect].to_numpy(float)
        keep = np.isfinite(labels)
        evaluation.matched[aspect] = (scores[keep], labels[keep])
        report[aspect] = correlations(scores[keep], labels[keep], n_resamples=n_resamples, seed=seed)
    return report


def _pair_scores(run: ScoredRun, pair_score: str) -> "np.ndarray":
    if pair_score == MEAN_OF_ASPECTS:
        return run.table[run.aspects].mean(axis=1)
    if pair_score not in run.table.columns or pair_score not in (*run.aspects, "reward"):
        raise TableError(f"pair score {pair_score!r} is not a column of {run.path}; expected 'mean', 'reward' or one of {run.aspects}.")
    return run.table[pair_score]


def evaluate(
    scores: str | os.PathLike,
    labels: Sequence[str | os.PathLike],
    *,
    pair_score: str = MEAN_OF_ASPECTS,
    tie_margin: float = 0.05,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Compare a scored table (from `videoscore-reward score`) with human labels.

    labels: one or more CSV/Parquet files, each either ratings (`video_name` and one column per rated
    aspect, named as in the scores) or preference pairs (`video_a`, `video_b`, `preference` in
    "a"/"b"/"tie"). pair_score: what predicts a preference: "mean" of the aspects (as
    VideoScore-Bench), "reward", or one aspect. tie_margin: scores closer than this predict a tie.
    Intervals: percentile bootstrap with `n_resamples` resamples from `numpy.random.default_rng(seed)`.
    Raises `TableError` (a ValueError, one line) for files the evaluation cannot use.
    """
    if not labels:
        raise TableError("no labels given: expected a ratings CSV and/or a pairs CSV.")
    run = read_scores(scores)
    duplicated = run.table.index[run.table.index.duplicated()]
    if len(duplicated):
        raise TableError(f"{run.path}: video {duplicated[0]!r} is scored more than once; expected one row per video.")
    evaluation = Evaluation({}, settings={"pair_score": pair_score, "n_resamples": n_resamples, "seed": seed})
    if run.skipped:
        evaluation.notes.append(f"{run.skipped} row(s) of {run.path} have no scores (an error) and are left out.")
    for path in map(Path, labels):
        table = read_table(path)
        if is_pairs_table(table):
            if "pairwise" in evaluation.report:
                raise TableError(f"{path} is a second pairs file; give one.")
            evaluation.report["pairwise"] = _pairwise_report(run, path, read_pairs(path, table), pair_score, tie_margin,
                                                             evaluation, n_resamples, seed)
        else:
            if "aspects" in evaluation.report:
                raise TableError(f"{path} is a second ratings file; give one.")
            evaluation.report["aspects"] = _ratings_report(run, path, table, evaluation, n_resamples, seed)
    return evaluation


def _pairwise_report(run, path, pairs, pair_score, tie_margin, evaluation, n_resamples, seed) -> dict:
    values = _pair_scores(run, pair_score)
    known = pairs["video_a"].isin(values.index) & pairs["video_b"].isin(values.index)
    if not known.any():
        raise TableError(
            f"no pair in {path} has both videos scored in {run.path} (e.g. {pairs['video_a'].iloc[0]!r}); video names must match."
        )
    if not known.all():
        evaluation.notes.append(f"{int((~known).sum())} of the {len(pairs)} pairs have a video without a score and are left out.")
    pairs = pairs[known]
    return pairwise_accuracy(
        values.loc[pairs["video_a"]].to_numpy(float), values.loc[pairs["video_b"]].to_numpy(float),
        pairs["preference"].to_numpy(), tie_margin=tie_margin, n_resamples=n_resamples, seed=seed,
    )
