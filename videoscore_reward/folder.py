"""Scoring every video of a folder into a table, resumable and shardable across processes."""

from __future__ import annotations

import csv
import os
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .reward import ASPECTS, VideoScoreReward, load_video

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
COLUMNS = ["video_name", *ASPECTS, "reward", "prompt", "num_frames", "error"]


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files below `root` (recursive, extension case-insensitive), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory of videos.")
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
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


@dataclass
class _Decoded:
    path: Path
    name: str
    prompt: str
    frames: torch.Tensor | None = None
    error: str = ""
    seconds: float = 0.0


def _decode(path: Path, name: str, prompt: str, num_frames: int | None) -> _Decoded:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation is reported in the row, not on the console
            frames = load_video(path, num_frames)
        return _Decoded(path, name, prompt, frames, seconds=time.perf_counter() - start)
    except Exception as error:  # a bad file must not stop the run
        return _Decoded(path, name, prompt, error=f"{type(error).__name__}: {error}", seconds=time.perf_counter() - start)


def _decode_ahead(jobs: list[tuple[Path, str, str]], num_frames: int | None, workers: int, window: int) -> Iterator[_Decoded]:
    """Decode in worker threads (PyAV releases the GIL), keeping at most `window` videos in flight."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[Future] = deque()
        todo = iter(jobs)
        for job in todo:
            pending.append(pool.submit(_decode, *job, num_frames))
            if len(pending) >= window:
                break
        while pending:
            yield pending.popleft().result()
            for job in todo:
                pending.append(pool.submit(_decode, *job, num_frames))
                break


@dataclass
class ScoreSummary:
    scored: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    model_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.scored / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.scored}, failed {self.failed}, skipped {self.skipped} already done, "
            f"{self.seconds:.1f} s ({rate:.2f} videos/s; decoding {self.decode_seconds:.1f} s in workers, "
            f"model {self.model_seconds:.1f} s)"
        )


def read_table(path: Path) -> pd.DataFrame:
    """A results table (CSV or Parquet) with the columns of `COLUMNS`."""
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    text_columns = ("video_name", "prompt", "error")
    table = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
    for column in text_columns:
        if column in table.columns:
            table[column] = table[column].fillna("")
    return table


def _partial_rows(path: Path) -> pd.DataFrame:
    """Rows flushed by an earlier, interrupted run; a line cut off by the interruption is dropped."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    if not data.strip():
        return pd.DataFrame(columns=COLUMNS)
    return read_table(path)


def _write_atomically(table: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        table.to_parquet(tmp, index=False)
    else:
        table.to_csv(tmp, index=False)
    os.replace(tmp, path)


class _RowWriter:
    """Appends rows to the partial CSV and flushes them, so an interruption loses nothing finished."""

    def __init__(self, path: Path):
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if new:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self._writer.writerows(rows)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _partial_path(out: Path, rank: int) -> Path:
    return out.with_name(f".{out.name}.rank{rank}.partial.csv")


def score_folder(
    reward: VideoScoreReward,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    prompt: str | None = None,
    prompts: Mapping[str, str] | None = None,
    decode_workers: int = 4,
    progress: bool = True,
) -> ScoreSummary:
    """Score every video below `root` and write one row per video to `out` (.csv or .parquet).

    Rows are flushed to a hidden partial file as they come; a re-run with the same arguments skips
    videos already in `out` or in the partial files, so an interrupted run resumes. Under
    `accelerate launch` each process scores every n-th video into its own partial file and the main
    process merges them, in folder order, into `out` (written atomically) once all are done.
    A file that fails to decode or score gets a row with its `error`; the run goes on.
    """
    from accelerate import PartialState

    state = PartialState()
    root, out = Path(root), Path(out)
    prompts = prompts or {}
    videos = find_videos(root)
    names = [p.relative_to(root).as_posix() for p in videos]

    done: set[str] = set()
    if out.exists():
        done.update(read_table(out)["video_name"])
    for rank in range(state.num_processes):
        done.update(_partial_rows(_partial_path(out, rank))["video_name"])
    summary = ScoreSummary(skipped=sum(name in done for name in names))
    jobs = [
        (path, name, resolve_prompt(path, name, prompt, prompts))
        for i, (path, name) in enumerate(zip(videos, names))
        if name not in done and i % state.num_processes == state.process_index
    ]

    start = time.perf_counter()
    writer = _RowWriter(_partial_path(out, state.process_index))
    bar = tqdm(total=len(jobs), unit="video", desc="scoring", disable=not progress or not state.is_local_main_process)
    try:
        batch: list[_Decoded] = []
        window = max(2 * reward.batch_size, decode_workers)
        for item in _decode_ahead(jobs, reward.num_frames, decode_workers, window):
            summary.decode_seconds += item.seconds
            batch.append(item)
            if len(batch) == reward.batch_size:
                writer.write(_score_batch(reward, batch, summary))
                bar.update(len(batch))
                batch = []
        if batch:
            writer.write(_score_batch(reward, batch, summary))
            bar.update(len(batch))
    finally:
        bar.close()
        writer.close()
        summary.seconds = time.perf_counter() - start

    state.wait_for_everyone()
    if state.is_main_process:
        _merge(out, names, state.num_processes)
    return summary


def _score_batch(reward: VideoScoreReward, batch: list[_Decoded], summary: ScoreSummary) -> list[dict]:
    rows = {item.name: _row(item) for item in batch}
    good = [item for item in batch if item.frames is not None]
    if good:
        start = time.perf_counter()
        try:
            results = reward([item.frames for item in good], [item.prompt for item in good]).to_dicts()
        except Exception:
            # Score one by one so a single bad video does not take the batch down with it.
            results = []
            for item in good:
                try:
                    results.extend(reward([item.frames], [item.prompt]).to_dicts())
                except Exception as error:
                    item.error = f"{type(error).__name__}: {error}"
                    results.append(None)
        summary.model_seconds += time.perf_counter() - start
        for item, result in zip(good, results):
            rows[item.name] = _row(item, result)
    for row in rows.values():
        if row["error"]:
            summary.failed += 1
            summary.errors.append(f"{row['video_name']}: {row['error']}")
        else:
            summary.scored += 1
    return list(rows.values())


def _row(item: _Decoded, result: dict | None = None) -> dict:
    row = {"video_name": item.name, "prompt": item.prompt, "error": item.error}
    row["num_frames"] = item.frames.shape[0] if item.frames is not None else 0
    for column in (*ASPECTS, "reward"):
        row[column] = result[column] if result else float("nan")
    return row


def _merge(out: Path, order: list[str], num_processes: int) -> None:
    parts = [read_table(out)] if out.exists() else []
    partials = [_partial_path(out, rank) for rank in range(num_processes)]
    parts += [_partial_rows(p) for p in partials]
    parts = [p for p in parts if len(p)]
    if not parts:
        return
    table = pd.concat(parts, ignore_index=True).drop_duplicates("video_name", keep="last")
    position = {name: i for i, name in enumerate(order)}
    table = table.sort_values("video_name", key=lambda s: s.map(lambda n: position.get(n, len(order))), kind="stable")
    _write_atomically(table[COLUMNS].reset_index(drop=True), out)
    for path in partials:
        path.unlink(missing_ok=True)
