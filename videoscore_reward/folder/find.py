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


MAX_SIDECAR_BYTES = 64 * 1024
"""A sidecar NAME.txt larger than this is not read (the prompt is cut to the model's positions anyway)."""


class SidecarError(ValueError):
    """A sidecar NAME.txt that cannot be a prompt (too large, not UTF-8, unreadable); names the file."""


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files below `root` (recursive, extension case-insensitive), sorted by relative path.

    Broken symbolic links with a video extension are included, and so are subfolders that cannot be
    listed (as the folder's own path), so that they get an error row rather than vanish. A `root`
    that cannot be listed raises PermissionError (or the OSError that listing it raised).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory of videos.")
    found: list[Path] = []

    def unreadable(error: OSError) -> None:
        if Path(error.filename) == root:
            raise type(error)(f"cannot list {root} ({error.strerror})") from None
        found.append(Path(error.filename))

    for folder, _, files in os.walk(root, onerror=unreadable):
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in VIDEO_EXTENSIONS and (path.is_file() or (path.is_symlink() and not path.exists())):
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def prompt_from_file_name(path: Path) -> str:
    """The prompt encoded in a generated video's name: the stem before `_seed_`, `_` read as a space."""
    return path.stem.split("_seed_")[0].replace("_", " ")


def read_prompts_csv(path: str | os.PathLike) -> dict[str, str]:
    """Map of file name (or path relative to the folder) to prompt, from a CSV with a `prompt` column
    and a `video_name` or `file_name` column. A name repeated with the same prompt is taken once; with
    different prompts it is a ValueError."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    key = next((c for c in ("video_name", "file_name") if c in table.columns), None)
    if key is None or "prompt" not in table.columns:
        raise ValueError(
            f"{path} needs a 'prompt' column and a 'video_name' or 'file_name' column, has {list(table.columns)}."
        )
    repeated = table[table.duplicated(key, keep=False)]
    conflicting = sorted(name for name, prompts in repeated.groupby(key)["prompt"] if prompts.nunique() > 1)
    if conflicting:
        raise ValueError(f"{path} gives different prompts for the same {key} {conflicting[:3]}" + (
            f" and {len(conflicting) - 3} more" if len(conflicting) > 3 else "") + "; keep one row per video.")
    return dict(zip(table[key], table["prompt"]))


def prompts_coverage(names: list[str], prompts: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(videos of `names` (relative paths) that `prompts` has no row for, keys of `prompts` that match
    no video); a key matches a video by relative path or by file name, as `resolve_prompt` looks up."""
    used = {key for name in names for key in (name, name.rsplit("/", 1)[-1]) if key in prompts}
    missing = [name for name in names if name not in prompts and name.rsplit("/", 1)[-1] not in prompts]
    return missing, [key for key in prompts if key not in used]


def resolve_prompt(path: Path, name: str, prompt: str | None, prompts: Mapping[str, str]) -> str:
    """The prompt for one video: `prompt` if given, else the prompts map (by relative path or file
    name), else a sidecar `NAME.txt` (`read_sidecar`: SidecarError if it is bad), else the file name."""
    if prompt:
        return prompt
    for key in (name, path.name):
        if key in prompts:
            return prompts[key]
    sidecar = path.with_suffix(".txt")
    if sidecar.is_file():
        return read_sidecar(sidecar)
    return prompt_from_file_name(path)


def read_sidecar(sidecar: Path) -> str:
    """The prompt in a sidecar NAME.txt (stripped), or SidecarError naming the file: larger than
    `MAX_SIDECAR_BYTES`, not UTF-8, or unreadable."""
    try:
        with open(sidecar, "rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as error:
        raise SidecarError(f"cannot read the prompt file {sidecar} ({error.strerror or error})") from None
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(f"the prompt file {sidecar} is over {MAX_SIDECAR_BYTES // 1024} KiB, too large for a prompt")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        raise SidecarError(f"the prompt file {sidecar} is not UTF-8 text (byte {error.start})") from None
