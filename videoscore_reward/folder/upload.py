"""Uploading an organised folder to the Hugging Face Hub as a dataset repo."""

from __future__ import annotations

import os
from pathlib import Path

FILES_PER_COMMIT = 1000
"""A folder with more files is uploaded in several commits of at most this many files."""


def files_to_upload(folder: str | os.PathLike) -> list[Path]:
    """The regular files below `folder`, sorted, with `metadata.csv` last (so that a partly uploaded
    repo never lists videos it does not hold yet). Hidden files and folders (`.cache`, leftovers of an
    interrupted copy) and symbolic links are left out, so nothing outside the folder is ever sent."""
    folder = Path(folder)
    inside = folder.resolve()
    files = []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if hidden or path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(inside):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix() == "metadata.csv")


def upload(folder: str | os.PathLike, repo_id: str, *, private: bool = False, api=None,
           files_per_commit: int = FILES_PER_COMMIT) -> str:
    """Upload an organised folder to the Hub as the dataset repo `repo_id` (created if needed): one
    commit, or commits of `files_per_commit` files for a larger folder, `metadata.csv` in the last.
    Files already on the Hub unchanged are not sent again, so an interrupted upload is resumed by
    running it again. The token comes from `HF_TOKEN` or `hf auth login`. Returns the repo URL.

    api: an `huggingface_hub.HfApi` (default: a new one).
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(folder)
    if not (folder / "metadata.csv").is_file():
        raise FileNotFoundError(f"{folder} has no metadata.csv; run `videoscore-reward organize` first.")
    files = files_to_upload(folder)
    api = api or HfApi()
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    chunks = [files[i : i + files_per_commit] for i in range(0, len(files), files_per_commit)]
    for number, chunk in enumerate(chunks, 1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        api.create_commit(
            repo_id=repo_id,
            repo_type="dataset",
            operations=[
                CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
                for path in chunk
            ],
            commit_message=f"Add {len(files)} files scored with videoscore-reward{part}",
        )
    return str(url)
