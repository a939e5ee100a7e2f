"""The results table of a scored folder: its columns, the partial files each process appends to
(so an interrupted run resumes), and the merge into the final table, written atomically."""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import pandas as pd

from ..reward import ASPECTS
from ..reward.checkpoints import FAMILIES
from ..spreadsheet import escape, unescaped, write_csv

TEXT_COLUMNS = ("video_name", "prompt", "error")


def columns(aspects: tuple[str, ...] = ASPECTS) -> list[str]:
    """The columns of a results table of a model with these aspects, in order."""
    return ["video_name", *aspects, "reward", "prompt", "num_frames", "error"]


def score_columns(aspects: tuple[str, ...] = ASPECTS) -> tuple[str, ...]:
    return (*aspects, "reward")


COLUMNS = columns()
"""The columns of a results table of VideoScore v1/v1.1, in order."""
SCORE_COLUMNS = score_columns()
# Every family's score columns: a table of any of them reads its empty score cells as NaN.
_NUMBER_COLUMNS = {c for family in FAMILIES.values() for c in score_columns(family.aspects)}


def _read_csv(source) -> pd.DataFrame:
    table = pd.read_csv(
        source,
        dtype=dict.fromkeys(TEXT_COLUMNS, str),
        keep_default_na=False,
        na_values={column: ["", "nan", "NaN"] for column in _NUMBER_COLUMNS},
    )
    return unescaped(table, TEXT_COLUMNS)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A results table (CSV or Parquet). Text columns stay text ("" where empty; a prompt "NA" stays
    "NA", an escaped formula reads back as written, see `spreadsheet`); empty score cells are NaN."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return _read_csv(path)


def check_results_table(path: str | os.PathLike, aspects: tuple[str, ...] | None = None) -> None:
    """Raise ValueError unless `path` is absent or a results table with our columns (what `score`
    may resume from and overwrite): never a folder, another CSV, or a binary file. `aspects`: those
    of the model that will write it; None accepts the table of any model family."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_file():
        raise ValueError(f"{path} is not a file; --out must be a results table (.csv or .parquet) or not exist yet.")
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet

            found = pyarrow.parquet.read_schema(path).names
        else:
            with open(path, encoding="utf-8", newline="") as f:
                found = next(csv.reader(f), [])
    except Exception as error:  # binary, not UTF-8, not Parquet: never overwrite it
        raise ValueError(f"{path} exists and is not a results table ({type(error).__name__}); not overwriting it.") from None
    allowed = [columns(aspects)] if aspects else [columns(family.aspects) for family in FAMILIES.values()]
    if found not in allowed:
        expected = allowed[0] if aspects else " or ".join(str(a) for a in allowed)
        raise ValueError(
            f"{path} exists and is not a results table of `videoscore-reward score`"
            + (" with this model's aspects" if aspects else "")
            + f" (columns {found[:8]}, expected {expected}); not overwriting it: choose another --out."
        )


def partial_path(out: Path, rank: int) -> Path:
    """The hidden partial file process `rank` appends its rows of `out` to."""
    return out.with_name(f".{out.name}.rank{rank}.partial.csv")


def partial_paths(out: Path) -> list[Path]:
    """The partial files of every rank, those of earlier runs with another process count included."""
    prefix = f".{out.name}.rank"
    return sorted(p for p in out.parent.glob(".*.partial.csv") if p.name.startswith(prefix))


def _complete_length(data: bytes) -> int:
    """How many leading bytes of a CSV are whole rows: up to the last line end outside quotes (a
    quoted field may hold line ends; doubled quotes keep the count of quotes even)."""
    parts = data.split(b'"')
    offset = len(data)
    for index in range(len(parts) - 1, -1, -1):
        offset -= len(parts[index])
        if index % 2 == 0 and b"\n" in parts[index]:  # outside quotes
            return offset + parts[index].rfind(b"\n") + 1
        offset -= 1  # the quote before this part
    return 0


def complete_rows(path: Path, aspects: tuple[str, ...] = ASPECTS) -> pd.DataFrame:
    """The rows of a partial file, less a last row cut off by an interruption (dropped with a
    warning). Read only: the file may be another process's, still being appended to."""
    data = path.read_bytes()
    length = _complete_length(data)
    if length < len(data):
        warnings.warn(f"{path}: dropped a torn last row ({len(data) - length} bytes) left by an interrupted run.", stacklevel=2)
        data = data[:length]
    if not data.strip():
        return pd.DataFrame(columns=columns(aspects))
    return _read_csv(io.BytesIO(data))


class RowWriter:
    """Appends rows to this process's partial CSV and flushes them to disk, so an interruption loses
    nothing that was finished. Only the owner repairs its file (a last line cut off by a kill)."""

    def __init__(self, path: Path, aspects: tuple[str, ...] = ASPECTS):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "r+b") as f:
                f.truncate(_complete_length(f.read()))
        self._file = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=columns(aspects))
        if self._file.tell() == 0:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        """Append `rows` (dicts by column) and flush them to disk; text is escaped (`spreadsheet`)."""
        self._writer.writerows({k: escape(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the partial file (every written row is already on disk)."""
        self._file.close()


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write `table` as CSV (escaped, see `spreadsheet`), or Parquet for a .parquet `path`, through a
    temporary file and a rename, so a reader never sees half a table."""
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        table.to_parquet(tmp, index=False)
    else:
        write_csv(table, tmp)
    os.replace(tmp, path)


def merge(out: Path, order: list[str], aspects: tuple[str, ...] = ASPECTS) -> pd.DataFrame:
    """Fold the partial files into `out` (written atomically), rows in folder order, then delete them.
    A video scored twice (a resumed run) keeps its newest row. Without any row, `out` is not written."""
    partials = partial_paths(out)
    parts = [read_table(out)] if out.exists() else []
    parts += [complete_rows(p, aspects) for p in partials]
    parts = [p for p in parts if len(p)]
    if not parts:  # nothing found to score: no table is written, and no header-only partial file is left
        table = pd.DataFrame(columns=columns(aspects))
    else:
        table = pd.concat(parts, ignore_index=True).drop_duplicates("video_name", keep="last")
        position = {name: i for i, name in enumerate(order)}
        table = table.sort_values("video_name", key=lambda s: s.map(lambda n: position.get(n, len(order))), kind="stable")
        table = table[columns(aspects)].reset_index(drop=True)
        write_atomically(table, out)
    for path in partials:
        path.unlink(missing_ok=True)
    return table
