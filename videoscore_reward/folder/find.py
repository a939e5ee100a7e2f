"""Which videos a folder holds, and the prompt of each."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".apng", ".mpg", ".mpeg",
    ".ts", ".mts", ".m2ts", ".ogv", ".flv", ".wmv", ".asf", ".3gp",
)
"""File extensions taken for videos (compared case-insensitively)."""


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files below `root` (recursive, extension case-insensitive), sorted by relative path.

    Broken symbolic links with a video extension are included, so that they get an error row
    rather than vanish.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory of videos.")
    found = [p for p in root.rglob("*") if (p.is_file() or (p.is_symlink() and not p.exists())) and p.suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def prompt_from_file_name(path: Path) -> str:
    """The prompt encoded in a generated video's name: the stem before `_seed_`, `_` read as a space."""
    return path.stem.split("_seed_")[0].replace("_", " ")


def read_prompts_csv(path: str | os.PathLike) -> dict[str, str]:
    """Map of file name (or path relative to the folder) to prompt, from a CSV with a `prompt` column
    and a `video_name` or `file_name` column."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    key = next((c for c in ("video_name", "file_name") if c in table.columns), None)
    if key is None or "prompt" not in table.columns:
        raise ValueError(
            f"{path} needs a 'prompt' column and a 'video_name' or 'file_name' column, has {list(table.columns)}."
        )
    return dict(zip(table[key], table["prompt"]))


def resolve_prompt(path: Path, name: str, prompt: str | None, prompts: Mapping[str, str]) -> str:
    """The prompt for one video: `prompt` if given, else the prompts map (by relative path or file
    name), else a sidecar `NAME.txt`, else the file name."""
    if prompt:
        return prompt
    for key in (name, path.name):
        if key in prompts:
            return prompts[key]
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        return sidecar.read_text(encoding="utf-8").strip()
    return prompt_from_file_name(path)
