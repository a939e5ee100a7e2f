"""The statistics of the evaluation commands, all on scipy: correlations, pairwise accuracy, shifts
between runs, and percentile-bootstrap 95% intervals from a seeded numpy Generator."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CORRELATIONS = ("spearman", "kendall", "pearson")
PREFERENCES = ("a", "b", "tie")


def _finite(value: float) -> float | None:
    """A float for a JSON report; None where the statistic is undefined (e.g. a constant column)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _interval(low, high) -> list[float | None]:
    return [_finite(low), _finite(high)]


def _bootstrap(data: tuple[np.ndarray, ...], statistic, *, paired: bool, vectorized: bool, n_resamples: int, seed: int):
    """scipy's percentile bootstrap; resamples where the statistic is undefined leave the interval None."""
    with warnings.catch_warnings():
        # A constant resample (few items) makes a correlation undefined; the interval says so by being None.
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            data, statistic, paired=paired, vectorized=vectorized, n_resamples=n_resamples,
            method="percentile", confidence_level=0.95, rng=np.random.default_rng(seed),
        )
    return result.confidence_interval


def _correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: the statistic is NaN, reported as None
        return np.array([
            stats.spearmanr(x, y).statistic,
            stats.kendalltau(x, y).statistic,
            stats.pearsonr(x, y).statistic if len(x) >= 2 else np.nan,
        ])


def correlations(scores: np.ndarray, labels: np.ndarray, *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Spearman, Kendall (tau-b) and Pearson correlation of model scores with human labels, each with a
    bootstrap 95% interval over items.

    scores, labels: float [N], the same items in the same order. Returns {"spearman", "kendall",
    "pearson", "n", "spearman_ci95", "kendall_ci95", "pearson_ci95"}; a statistic that is undefined
    (constant scores or labels, fewer than 3 items for an interval) is None.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be two 1-D arrays of one length, got {scores.shape} and {labels.shape}.")
    point = _correlations(scores, labels)
    report: dict = {name: _finite(value) for name, value in zip(CORRELATIONS, point)}
    report["n"] = int(len(scores))
    if len(scores) >= 3 and np.isfinite(point).all():
        low, high = _bootstrap((scores, labels), _correlations, paired=True, vectorized=False, n_resamples=n_resamples, seed=seed)
    else:
        low = high = np.full(len(CORRELATIONS), np.nan)
    for i, name in enumerate(CORRELATIONS):
        report[f"{name}_ci95"] = _interval(low[i], high[i])
    return report


def pairwise_outcomes(score_a: np.ndarray, score_b: np.ndarray, preference: np.ndarray, *, tie_margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs the model gets right, with human ties and without them.

    score_a, score_b: float [P], the model's score of each pair's two videos; preference: [P] of
    "a", "b" or "tie" (the human judgement). With ties, a human tie is right when the scores differ
    by less than `tie_margin`, and a preference is right when the preferred video scores at least
    `tie_margin` higher. Without ties, only preferred pairs count, right when the preferred video
    scores strictly higher. Returns (right_with_ties bool [P], right_without_ties bool [P'] for the
    P' pairs that are not ties).
    """
    preference = np.asarray(preference)
    unknown = sorted(set(preference.tolist()) - set(PREFERENCES))
    if unknown:
        raise ValueError(f"preference must be one of {list(PREFERENCES)}, got {unknown[:5]}.")
    if tie_margin < 0 or not np.isfinite(tie_margin):
        raise ValueError(f"tie_margin must be a finite number >= 0, got {tie_margin}.")
    diff = np.asarray(score_a, float) - np.asarray(score_b, float)
    sign = np.where(preference == "a", 1.0, -1.0)
    tie = preference == "tie"
    with_ties = np.where(tie, np.abs(diff) < tie_margin, (sign * diff > 0) & (np.abs(diff) >= tie_margin))
    without_ties = (sign * diff > 0)[~tie]
    return with_ties, without_ties


def _accuracy(right: np.ndarray, n_resamples: int, seed: int) -> tuple[float | None, list[float | None]]:
    if len(right) == 0:
        return None, [None, None]
    right = right.astype(float)
    if len(right) < 2:
        return float(right.mean()), [None, None]
    low, high = _bootstrap((right,), np.mean, paired=False, vectorized=True, n_resamples=n_resamples, seed=seed)
    return float(right.mean()), _interval(low, high)


def pairwise_accuracy(score_a, score_b, preference, *, tie_margin: float = 0.05, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Pairwise accuracy of the model against human preferences (see `pairwise_outcomes`), with and
    without ties, each with a bootstrap 95% interval over pairs.

    Returns {"accuracy_with_ties", "accuracy_without_ties", "n_pairs", "n_pairs_without_ties",
    "accuracy_with_ties_ci95", "accuracy_without_ties_ci95", "tie_margin"}.
    """
    with_ties, without_ties = pairwise_outcomes(score_a, score_b, preference, tie_margin=tie_margin)
    report: dict = {}
    for name, right in (("accuracy_with_ties", with_ties), ("accuracy_without_ties", without_ties)):
        report[name], report[f"{name}_ci95"] = _accuracy(right, n_resamples, seed)
    report["n_pairs"] = int(len(with_ties))
    report["n_pairs_without_ties"] = int(len(without_ties))
    report["tie_margin"] = float(tie_margin)
    return report


@dataclass
class Shift:
    """How one column moved from run A to run B. `diff` is mean(B) - mean(A); over prompts present in
    both runs when `paired` (then `test` is Wilcoxon's signed-rank test of the per-prompt
    differences), else over all rows (Mann-Whitney U)."""

    mean_a: float
    mean_b: float
    diff: float
    ci95: list[float | None]
    p_value: float | None
    test: str
    paired: bool
    n_a: int
    n_b: int

    def significant(self, alpha: float) -> bool:
        return self.p_value is not None and self.p_value < alpha

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _mean_diff(b, a, axis=-1):
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def shift(a: np.ndarray, b: np.ndarray, *, paired: bool, n_resamples: int = 1000, seed: int = 0) -> Shift:
    """The shift of one column between runs. a, b: float [N_a], [N_b]; with `paired`, the same
    prompts in the same order (N_a == N_b) and the interval resamples prompts, else each run's rows
    are resampled on their own."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired and a.shape != b.shape:
        raise ValueError(f"paired runs need one value per prompt in each, got {len(a)} and {len(b)}.")
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else float("nan")
    ci, p_value = [None, None], None
    if paired:
        test = "wilcoxon signed-rank"
        differences = b - a
        if len(differences) >= 2:
            low, high = _bootstrap((differences,), np.mean, paired=False, vectorized=True, n_resamples=n_resamples, seed=seed)
            ci = _interval(low, high)
            # All differences zero: no evidence of a shift (scipy cannot rank an all-zero sample).
            p_value = 1.0 if not np.any(differences) else _finite(stats.wilcoxon(differences).pvalue)
    else:
        test = "mann-whitney u"
        if len(a) >= 2 and len(b) >= 2:
            low, high = _bootstrap((b, a), _mean_diff, paired=False, vectorized=True, n_resamples=n_resamples, seed=seed)
            ci = _interval(low, high)
            p_value = _finite(stats.mannwhitneyu(b, a).pvalue)
    return Shift(_finite(a.mean()) if len(a) else None, _finite(b.mean()) if len(b) else None, diff, ci,
                 p_value, test, paired, int(len(a)), int(len(b)))
