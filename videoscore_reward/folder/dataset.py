"""A scored folder as a Hugging Face `videofolder` dataset."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..reward import ASPECTS
from ..spreadsheet import unescaped
from .table import read_table, write_atomically

# Not "original_file_name": datasets reads every "*_file_name" column as a link to a media file in
# the folder, and the original names point outside it.
METADATA_COLUMNS = ["file_name", "prompt", *ASPECTS, "reward", "original_video_name"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_inside(root: Path, names: pd.Series, scores) -> None:
    """Raise ValueError naming the rows of `scores` whose video resolves outside `root`."""
    inside = root.resolve()
    outside = [name for name in names if not (root / name).resolve().is_relative_to(inside)]
    if outside:
        shown = ", ".join(repr(name) for name in outside[:3]) + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
        raise ValueError(
            f"{scores} names {len(outside)} video(s) outside {root} ({shown}): every video_name must lie inside "
            f"the scored folder (no absolute paths, '..' or links out of it); nothing was copied."
        )


def _read_metadata(path: Path) -> pd.DataFrame:
    """An existing `metadata.csv`, or ValueError if it is not one this function wrote."""
    try:
        metadata = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as error:  # pandas' ParserError and EmptyDataError are ValueErrors
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{path} is not a readable metadata.csv ({reason}); fix or move it.") from None
    if "file_name" not in metadata.columns:
        raise ValueError(f"{path} has no file_name column (has {list(metadata.columns)[:8]}); fix or move it.")
    return unescaped(metadata, metadata.columns)


@dataclass
class OrganizeReport:
    """Original video names by outcome: `skipped` rows have an error, `missing` videos are not
    under the folder."""

    copied: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"copied {len(self.copied)}, already there {len(self.already_there)}, "
            f"skipped {len(self.skipped)} with an error, missing {len(self.missing)}"
        )


def organize(
    root: str | os.PathLike,
    scores: str | os.PathLike,
    out: str | os.PathLike,
    *,
    prefix: str = "",
    dry_run: bool = False,
) -> OrganizeReport:
    """Copy the scored videos of `root` into `out` as a `videofolder` dataset.

    Each video becomes `out/<uuid><ext>` (the uuid is derived from the file's SHA-256, so the same
    video always gets the same name) with `out/<uuid>.txt` holding `prefix + prompt`, and
    `out/metadata.csv` gets a row with `file_name`, `prompt`, the aspect columns, `reward` and
    `original_video_name`. Rows with an error are skipped, and so are videos no longer under
    `root`. Nothing is overwritten or deleted: a video already in `out` is left as it is, and a name
    taken by different content is an error. Each copy is verified by size and hash. Running it twice
    adds nothing.

    Every `video_name` must resolve (symbolic links followed) inside `root`: an absolute path, a
    `..` or a link out of the folder raises ValueError before anything is copied. Text cells of
    `metadata.csv` are escaped against spreadsheet formulas (see `spreadsheet`); each `<uuid>.txt`
    holds the prompt as is.
    """
    root, out = Path(root), Path(out)
    table = read_table(Path(scores))
    missing = [c for c in ["video_name", "prompt", *ASPECTS, "reward"] if c not in table.columns]
    if missing:
        raise ValueError(f"{scores} lacks the columns {missing}; expected the output of `videoscore-reward score`.")
    _check_inside(root, table["video_name"], scores)
    metadata_path = out / "metadata.csv"
    metadata = _read_metadata(metadata_path) if metadata_path.exists() else None
    known = set(metadata["file_name"]) if metadata is not None else set()

    report = OrganizeReport()
    new_rows = []
    errors = table["error"].fillna("").astype(str) if "error" in table.columns else pd.Series([""] * len(table))
    for (_, row), error in zip(table.iterrows(), errors):
        source = root / row["video_name"]
        if error:
            report.skipped.append(row["video_name"])
            continue
        if not source.is_file():
            report.missing.append(row["video_name"])
            continue
        digest = _sha256(source)
        file_name = f"{uuid.UUID(hex=digest[:32])}{source.suffix.lower()}"
        target = out / file_name
        if file_name in known:
            report.already_there.append(row["video_name"])
            continue
        if target.exists() and _sha256(target) != digest:
            raise FileExistsError(f"{target} exists with other content; not overwriting it.")
        report.copied.append(row["video_name"])
        prompt = f"{prefix}{row['prompt']}"
        new_rows.append({"file_name": file_name, "prompt": prompt, **{c: row[c] for c in (*ASPECTS, "reward")},
                         "original_video_name": row["video_name"]})
        known.add(file_name)
        if dry_run:
            continue
        out.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            if tmp.stat().st_size != source.stat().st_size or _sha256(tmp) != digest:
                tmp.unlink()
                raise OSError(f"Copy of {source} to {target} does not match the source (size or hash).")
            os.replace(tmp, target)
        caption = target.with_suffix(".txt")
        if not caption.exists():
            caption.write_text(prompt, encoding="utf-8")

    if new_rows and not dry_run:
        combined = pd.DataFrame(new_rows, columns=METADATA_COLUMNS)
        if metadata is not None:
            combined = pd.concat([metadata, combined], ignore_index=True)
        write_atomically(combined, metadata_path)
    return report

