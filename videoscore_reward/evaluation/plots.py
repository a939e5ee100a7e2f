"""The PNG plots of evaluate, compare and stability.

Figures are built with matplotlib's object API (`Figure`, Agg canvas): no pyplot state, so plotting
is safe from the app's worker threads. Every plot is FIGSIZE at DPI: 640 x 480 pixels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

FIGSIZE = (6.4, 4.8)
DPI = 100
PIXELS = (640, 480)
"""(width, height) of every PNG written here."""
_RUN_COLOURS = ("#4c72b0", "#dd8452")


def slug(name: str) -> str:
    """A file-name-safe form of an aspect name: "text-to-video alignment" -> "text-to-video_alignment"."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "column"


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")  # no bbox "tight": every PNG keeps PIXELS
    return path


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def scatter_with_fit(scores: np.ndarray, labels: np.ndarray, aspect: str, path: str | os.PathLike) -> Path:
    """Model score (x) against human label (y) of one aspect, with the least-squares line."""
    figure, axes = _figure()
    axes.scatter(scores, labels, s=14, alpha=0.6, color=_RUN_COLOURS[0], edgecolors="none")
    if len(scores) >= 2 and np.ptp(scores) > 0:
        fit = stats.linregress(scores, labels)
        xs = np.linspace(np.min(scores), np.max(scores), 2)
        axes.plot(xs, fit.intercept + fit.slope * xs, color=_RUN_COLOURS[1],
                  label=f"fit: y = {fit.slope:.2f} x {fit.intercept:+.2f} (r = {fit.rvalue:.2f})")
        axes.legend(loc="upper left", fontsize=8)
    axes.set(xlabel="model score", ylabel="human rating", title=f"{aspect} (n = {len(scores)})")
    return _save(figure, path)


def calibration_curve(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, *, bins: int = 5) -> Path:
    """Mean human rating against mean model score in quantile bins of the model score, one line per
    aspect; on the dashed diagonal the reward is calibrated to the human scale."""
    figure, axes = _figure()
    low, high = np.inf, -np.inf  # of the model scores: the diagonal must not stretch the axes
    for aspect, (scores, labels) in pairs.items():
        edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, max(len(edges) - 2, 0))
        groups = [which == k for k in np.unique(which)]
        xs = np.array([scores[g].mean() for g in groups])
        ys = np.array([labels[g].mean() for g in groups])
        axes.plot(xs, ys, marker="o", label=aspect)
        low, high = min(low, xs.min()), max(high, xs.max())
    if np.isfinite(low):
        axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="calibrated")
    axes.set(xlabel=f"mean model score ({bins} quantile bins)", ylabel="mean human rating", title="Calibration")
    axes.legend(fontsize=8)
    return _save(figure, path)


def distributions(a: np.ndarray, b: np.ndarray, name: str, run_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Violins of one column in run A and run B, means marked."""
    figure, axes = _figure()
    data = [np.asarray(v, float) for v in (a, b)]
    if all(np.ptp(d) > 0 for d in data):
        parts = axes.violinplot(data, showmeans=True, showextrema=True)
        for body, colour in zip(parts["bodies"], _RUN_COLOURS):
            body.set_facecolor(colour)
    else:  # a constant column has no density to draw
        for i, d in enumerate(data, start=1):
            axes.scatter(np.full(len(d), i), d, color=_RUN_COLOURS[i - 1], alpha=0.5)
    axes.set_xticks([1, 2], [f"{n}\n(n = {len(d)})" for n, d in zip(run_names, data)])
    axes.set(ylabel="score", title=name)
    return _save(figure, path)


def per_prompt_scatter(a: np.ndarray, b: np.ndarray, run_names: Sequence[str], path: str | os.PathLike) -> Path:
    """The weighted reward of each prompt in run A (x) and run B (y); above the diagonal it gained."""
    figure, axes = _figure()
    axes.scatter(a, b, s=16, alpha=0.7, color=_RUN_COLOURS[0], edgecolors="none")
    low, high = float(min(np.min(a), np.min(b))), float(max(np.max(a), np.max(b)))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel=f"reward in {run_names[0]}", ylabel=f"reward in {run_names[1]}",
             title=f"Per-prompt reward ({len(a)} prompts in both runs)")
    return _save(figure, path)


def stability_bars(mean_abs: Mapping[str, Sequence[float]], max_abs: Mapping[str, Sequence[float]], columns: Sequence[str],
                   path: str | os.PathLike, *, title: str = "Score change under transformations") -> Path:
    """Grouped bars: mean absolute score change of each column under each transformation, the
    maximum as a black tick."""
    figure, axes = _figure()
    names = list(mean_abs)
    width = 0.8 / max(len(columns), 1)
    x = np.arange(len(names))
    for k, column in enumerate(columns):
        offset = x - 0.4 + (k + 0.5) * width
        axes.bar(offset, [mean_abs[n][k] for n in names], width, label=column)
        axes.scatter(offset, [max_abs[n][k] for n in names], marker="_", color="black", s=60, zorder=3)
    axes.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    axes.set(ylabel="|score change| (bar: mean, tick: max)", title=title)
    axes.legend(fontsize=7, ncols=2)
    return _save(figure, path)
