"""`compare`: did fine-tuning improve the videos, or hack the reward?

Two scored runs (before and after fine-tuning, two checkpoints): how each aspect and the weighted
reward moved, paired by prompt where the same prompts appear in both, and a flag on every aspect that
fell significantly while the reward rose (public GRPO runs drift to a cartoon style under a
visual-quality reward while the aspects nobody optimised fall).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import plots
from .metrics import Shift, shift
from .report_html import compare_html
from .tables import REWARD, ScoredRun, TableError, read_scores


@dataclass
class Comparison:
    """What `compare` found. `shifts` has one `Shift` per aspect and one for "reward"; `flags` one
    sentence per aspect that fell significantly while the reward rose; `gained`/`lost` the prompts
    (or video names, see `key`) whose reward rose/fell most (paired runs only), each a dict with
    `key`'s value, reward_a, reward_b and the change of every column. `rows` and `per_prompt` keep the values the plots
    are drawn from."""

    run_names: tuple[str, str]
    aspects: list[str]
    key: str  # what pairs rows of the two runs: "prompt" or "video_name"
    shifts: dict[str, Shift]
    flags: list[str]
    gained: list[dict]
    lost: list[dict]
    alpha: float
    rows: tuple[pd.DataFrame, pd.DataFrame]
    per_prompt: pd.DataFrame | None  # index key; columns (run, column) for the prompts in both runs
    notes: list[str] = field(default_factory=list)

    @property
    def paired(self) -> bool:
        return self.per_prompt is not None

    @property
    def reward_hacking(self) -> bool:
        return bool(self.flags)

    def to_dict(self) -> dict:
        return {
            "runs": {"a": self.run_names[0], "b": self.run_names[1]},
            "paired_by": self.key if self.paired else None,
            "n_paired": 0 if self.per_prompt is None else len(self.per_prompt),
            "alpha": self.alpha,
            "shifts": {name: s.to_dict() for name, s in self.shifts.items()},
            "reward_hacking": self.reward_hacking,
            "flags": self.flags,
            "top_gained": self.gained,
            "top_lost": self.lost,
            "notes": self.notes,
        }

    def write_plots(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write the PNGs to `out`: violin_<column>.png per aspect and for the reward, and
        per_prompt_reward.png when the runs share prompts. Returns their paths by column name
        ("per prompt" for the scatter), as `report_html` takes them."""
        out = Path(out)
        a, b = self.rows
        images = {
            column: plots.distributions(a[column], b[column], column, self.run_names, out / f"violin_{plots.slug(column)}.png")
            for column in tqdm([*self.aspects, REWARD], desc="plots", unit="plot", leave=False)
        }
        if self.per_prompt is not None:
            names = self.run_names
            images["per prompt"] = plots.per_prompt_scatter(
                self.per_prompt[(names[0], REWARD)], self.per_prompt[(names[1], REWARD)], names, out / "per_prompt_reward.png"
            )
        return images

    def write(self, out: str | os.PathLike) -> list[Path]:
        """Write report.json, report.html (plots embedded) and the PNGs (see `write_plots`) to `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        images = self.write_plots(out)
        report = out / "report.json"
        report.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        html = out / "report.html"
        html.write_text(compare_html(self, images), encoding="utf-8")
        return [report, html, *images.values()]


def _run_names(a: Path, b: Path) -> tuple[str, str]:
    for names in ((a.stem, b.stem), (a.parent.name, b.parent.name), (f"{a.parent.name}/{a.stem}", f"{b.parent.name}/{b.stem}")):
        if names[0] and names[0] != names[1]:
            return names
    return ("A", "B")


def _rows(run: ScoredRun, key: str, weights) -> pd.DataFrame:
    rows = run.table[run.aspects].copy()
    rows[REWARD] = run.reward(weights)
    rows[key] = run.table["prompt"] if key == "prompt" else run.table.index
    return rows.reset_index(drop=True)


def _top(per_prompt: pd.DataFrame, key: str, names: tuple[str, str], columns: list[str], top: int, gained: bool) -> list[dict]:
    change = per_prompt[names[1]] - per_prompt[names[0]]
    order = change[REWARD].sort_values(ascending=not gained)
    chosen = order[order > 0] if gained else order[order < 0]
    return [
        {key: value, "reward_a": float(per_prompt.loc[value, (names[0], REWARD)]),
         "reward_b": float(per_prompt.loc[value, (names[1], REWARD)]),
         "change": {c: float(change.loc[value, c]) for c in columns}}
        for value in chosen.index[:top]
    ]


def compare(
    run_a: str | os.PathLike,
    run_b: str | os.PathLike,
    *,
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    top: int = 5,
    n_resamples: int = 1000,
    seed: int = 0,
    names: tuple[str, str] | None = None,
) -> Comparison:
    """Compare two scored tables (from `videoscore-reward score`): B against A.

    weights: the reward's aspect weights (those the fine-tuning optimised); default: each run's
    `reward` column. Rows pair by prompt (each prompt's mean over its videos) where prompts of A
    appear in B, else by video name; paired columns get a bootstrap interval over prompts and
    Wilcoxon's signed-rank test, unpaired ones an interval over rows and the Mann-Whitney U test.
    An aspect is flagged when its mean fell with p < alpha while the mean reward rose.
    names: what the report calls the runs (default: from the file names, or their folders' names).
    Raises `TableError` (one line) for tables that cannot be compared.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    first, second = read_scores(run_a), read_scores(run_b)
    if first.aspects != second.aspects:
        raise TableError(
            f"{first.path} scores {first.aspects} but {second.path} scores {second.aspects}; compare runs scored by the same model."
        )
    aspects, names = first.aspects, names or _run_names(first.path, second.path)
    has_prompts = all("prompt" in r.table.columns and (r.table["prompt"] != "").all() for r in (first, second))
    key = "prompt" if has_prompts else "video_name"
    a, b = _rows(first, key, weights), _rows(second, key, weights)
    columns = [*aspects, REWARD]
    means = [rows.groupby(key, sort=True)[columns].mean() for rows in (a, b)]
    common = means[0].index.intersection(means[1].index)
    per_prompt = None
    notes = [f"{r.skipped} row(s) of {r.path} have no scores and are left out." for r in (first, second) if r.skipped]
    if len(common) >= 2:
        per_prompt = pd.concat({names[0]: means[0].loc[common], names[1]: means[1].loc[common]}, axis=1)
        if len(common) < max(len(m) for m in means):
            notes.append(f"paired on the {len(common)} {key}s present in both runs; the others are left out of the shifts.")
    else:
        notes.append(f"fewer than 2 {key}s appear in both runs: the runs are compared as independent samples.")

    shifts = {}
    for column in columns:
        if per_prompt is not None:
            shifts[column] = shift(per_prompt[(names[0], column)], per_prompt[(names[1], column)], paired=True,
                                   n_resamples=n_resamples, seed=seed)
        else:
            shifts[column] = shift(a[column], b[column], paired=False, n_resamples=n_resamples, seed=seed)
    rose = shifts[REWARD]
    flags = [
        f"{aspect} fell by {-s.diff:.3f} (95% CI [{s.ci95[0]:.3f}, {s.ci95[1]:.3f}], p = {s.p_value:.2g}) while the "
        f"reward rose by {rose.diff:.3f}" + ("" if rose.significant(alpha) else f" (not significant, p = {rose.p_value:.2g})")
        for aspect in aspects
        if (s := shifts[aspect]).diff < 0 and s.significant(alpha) and rose.diff > 0 and s.ci95[0] is not None
    ]
    gained = lost = []
    if per_prompt is not None:
        gained, lost = (_top(per_prompt, key, names, columns, top, g) for g in (True, False))
    return Comparison(names, aspects, key, shifts, flags, gained, lost, alpha, (a, b), per_prompt, notes)
