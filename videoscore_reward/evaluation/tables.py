"""Reading the tables the evaluation commands take: scored runs, human ratings and preference pairs.

The aspects are whatever score columns a table has (VideoScore v1 writes five on 1-4, VideoScore2
three on 1-5), never a fixed list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..spreadsheet import unescaped
from .metrics import PREFERENCES

NAME_COLUMNS = ("video_name", "file_name", "video")
"""Columns that name a video, in order of preference (`score` writes video_name, the app's CSV video)."""
_NOT_ASPECTS = {*NAME_COLUMNS, "original_video_name", "prompt", "reward", "num_frames", "error", "rank", "seed", "step"}
PAIR_COLUMNS = ("video_a", "video_b", "preference")
REWARD = "reward"
_TEXT_COLUMNS = {*NAME_COLUMNS, *PAIR_COLUMNS, "original_video_name", "prompt", "error"}


class TableError(ValueError):
    """A table the evaluation cannot use; the message is one line naming the file and what was expected."""


def _numbers(cells: pd.Series) -> pd.Series | None:
    """A text column as floats, if every non-empty cell is a number ("", "nan" are missing); else None."""
    missing = cells.str.strip().isin(["", "nan", "NaN"])
    numbers = pd.to_numeric(cells.where(~missing), errors="coerce")
    return numbers if numbers.notna().sum() == (~missing).sum() else None


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV or Parquet table. CSV cells are read as text, so a prompt or a video named "NA" stays
    itself; a column whose every non-empty cell is a number becomes float (empty cells NaN)."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file" + (" (it is a directory)" if path.is_dir() else "") + ".")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty, expected a CSV table with a header row.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise TableError(f"{path} is not a readable CSV or Parquet table ({reason}).") from None
    for column in table.columns:
        if column not in _TEXT_COLUMNS and (numbers := _numbers(table[column])) is not None:
            table[column] = numbers
    return unescaped(table, _TEXT_COLUMNS)  # our CSVs escape cells that look like formulas


def aspect_columns(table: pd.DataFrame, path: str | os.PathLike) -> list[str]:
    """The numeric score columns of a table, in table order: everything numeric but names, prompt,
    reward and bookkeeping (num_frames, error, rank, seed, step)."""
    aspects = [c for c in table.columns if c not in _NOT_ASPECTS and pd.api.types.is_numeric_dtype(table[c])]
    if not aspects:
        raise TableError(f"{path} has no numeric aspect score columns (columns: {list(table.columns)}).")
    return aspects


def _name_column(table: pd.DataFrame, path) -> str:
    for column in NAME_COLUMNS:
        if column in table.columns:
            return column
    raise TableError(f"{path} needs a 'video_name' column naming each video, has {list(table.columns)}.")


@dataclass
class ScoredRun:
    """The scored rows of a table written by `videoscore-reward score` (or any table with a name column
    and aspect columns). `table` holds only rows with every aspect scored, indexed by video name;
    `skipped` counts the rows left out (an error, a missing score)."""

    path: Path
    table: pd.DataFrame
    aspects: list[str]
    skipped: int

    def reward(self, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """The weighted reward of each row: the `reward` column unless `weights` are given (weighted
        mean of the aspects, others weigh 0); the mean of the aspects where there is no reward column."""
        if weights is None and "reward" in self.table.columns and self.table["reward"].notna().all():
            return self.table["reward"].to_numpy(float)
        weights = weights or dict.fromkeys(self.aspects, 1.0)
        unknown = [a for a in weights if a not in self.aspects]
        if unknown:
            raise TableError(f"{self.path}: weights name {unknown}, not among its aspects {self.aspects}.")
        w = np.array([float(weights.get(a, 0.0)) for a in self.aspects])
        if (w < 0).any() or w.sum() <= 0:
            raise TableError(f"weights must be >= 0 with a positive sum, got {dict(weights)}.")
        return self.table[self.aspects].to_numpy(float) @ w / w.sum()


def read_scores(path: str | os.PathLike, aspects: list[str] | None = None) -> ScoredRun:
    """Read a scored table; `aspects` picks the score columns (default: every numeric score column)."""
    path = Path(path)
    table = read_table(path)
    name = _name_column(table, path)
    if aspects is None:
        aspects = aspect_columns(table, path)
    missing = [a for a in aspects if a not in table.columns]
    if missing:
        raise TableError(f"{path} has no column {missing[0]!r} (columns: {list(table.columns)}).")
    bad = [a for a in aspects if not pd.api.types.is_numeric_dtype(table[a])]
    if bad:
        raise TableError(f"{path}: column {bad[0]!r} is not numeric, expected scores.")
    scored = table[table[aspects].notna().all(axis=1) & table[name].notna()]
    scored = scored.set_index(scored[name].astype(str)).drop(columns=[name])
    scored.index.name = "video_name"
    if scored.empty:
        raise TableError(f"{path} has no scored rows (every row has an error or a missing score).")
    return ScoredRun(path, scored, list(aspects), len(table) - len(scored))


def is_pairs_table(table: pd.DataFrame) -> bool:
    return {"video_a", "video_b"} <= set(table.columns)


def read_ratings(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Human ratings: a name column and numeric rating columns, indexed by video name (unique)."""
    name = _name_column(table, path)
    ratings = table.set_index(table[name].astype(str)).drop(columns=[name])
    duplicated = ratings.index[ratings.index.duplicated()].unique().tolist()
    if duplicated:
        raise TableError(f"{path}: video {duplicated[0]!r} is rated more than once; expected one row per video.")
    return ratings[[c for c in ratings.columns if pd.api.types.is_numeric_dtype(ratings[c])]]


def read_pairs(path: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Preference pairs: video_a, video_b and preference ("a", "b" or "tie", any case)."""
    missing = [c for c in PAIR_COLUMNS if c not in table.columns]
    if missing:
        raise TableError(f"{path}: a pairs file needs columns {list(PAIR_COLUMNS)}, missing {missing}.")
    pairs = table[list(PAIR_COLUMNS)].copy()
    pairs["preference"] = pairs["preference"].str.strip().str.lower()
    unknown = sorted(set(pairs["preference"]) - set(PREFERENCES))
    if unknown:
        raise TableError(f"{path}: preference must be one of {list(PREFERENCES)}, got {unknown[:3]}.")
    return pairs
