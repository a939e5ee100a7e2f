"""Scoring every video of a folder into a table: decoding runs ahead in threads, rows are flushed as
they come (an interrupted run resumes), and under `accelerate launch` the videos are sharded."""

from __future__ import annotations

import csv
import io
import os
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .reward import ASPECTS, VideoScoreReward, load_video

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".apng", ".mpg", ".mpeg",
    ".ts", ".mts", ".m2ts", ".ogv", ".flv", ".wmv", ".asf", ".3gp",
)
COLUMNS = ["video_name", *ASPECTS, "reward", "prompt", "num_frames", "error"]
_TEXT_COLUMNS = ("video_name", "prompt", "error")
_SCORE_COLUMNS = (*ASPECTS, "reward")


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


def _read_csv(source) -> pd.DataFrame:
    return pd.read_csv(
        source,
        dtype=dict.fromkeys(_TEXT_COLUMNS, str),
        keep_default_na=False,
        na_values={column: ["", "nan", "NaN"] for column in _SCORE_COLUMNS},
    )


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A results table (CSV or Parquet). Text columns stay text ("" where empty; a prompt "NA" stays
    "NA"); empty score cells are NaN."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return _read_csv(path)


# Decoding ------------------------------------------------------------------------------------------

_decode_thread = threading.local()


@contextmanager
def _warnings_to_rows():
    """Hand the warnings `load_video` gives in a decode thread (a truncated file) to that thread.

    `warnings.catch_warnings` is not thread-safe, so the decode threads must not enter it; instead
    the calling thread installs one hook for the whole run that gives each warning raised at this
    module's `load_video` call to the thread that raised it, and lets every other warning through.
    """
    with warnings.catch_warnings():
        show = warnings.showwarning

        def route(message, category, filename, lineno, file=None, line=None):
            notes = getattr(_decode_thread, "notes", None)
            if notes is not None and filename == __file__:
                notes.append(str(message))
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = route
        warnings.filterwarnings("always", module=re.escape(__name__) + r"\Z")
        yield


@dataclass
class _Decoded:
    name: str
    prompt: str = ""
    frames: torch.Tensor | None = None
    error: str = ""
    seconds: float = 0.0  # decoding, in its worker thread
    waited: float = 0.0  # the scoring loop waiting for it


def _decode(path: Path, name: str, prompt: str | None, prompts: Mapping[str, str], num_frames: int | None) -> _Decoded:
    """Runs in a decode thread; never raises, a failure becomes the row's `error`."""
    start = time.perf_counter()
    item = _Decoded(name)
    _decode_thread.notes = []
    try:
        item.prompt = resolve_prompt(path, name, prompt, prompts)
        item.frames = load_video(path, num_frames)
        if _decode_thread.notes:  # damaged: scored from the frames that decoded, and flagged
            item.error = "; ".join(_decode_thread.notes)
    except Exception as error:  # a bad file must not stop the run
        item.error = f"{type(error).__name__}: {error}"
    finally:
        _decode_thread.notes = None
    item.seconds = time.perf_counter() - start
    return item


def _decode_ahead(jobs: list, workers: int, window: int) -> Iterator[_Decoded]:
    """Decode `jobs` (argument tuples of `_decode`) in worker threads (PyAV releases the GIL) and
    yield them in order, keeping at most `window` videos in flight; each item's `waited` is how
    long the caller waited for it."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        todo = iter(jobs)
        pending: deque[Future] = deque(pool.submit(_decode, *job) for job in islice(todo, window))
        try:
            while pending:
                start = time.perf_counter()
                item = pending.popleft().result()
                item.waited = time.perf_counter() - start
                pending.extend(pool.submit(_decode, *job) for job in islice(todo, 1))
                yield item
        finally:  # stopped early (an interruption): do not decode what nobody will read
            for future in pending:
                future.cancel()


# Results: partial files, merge -------------------------------------------------------------------


@dataclass
class ScoreSummary:
    """What a `score_folder` run did, summed over processes. `scored` includes the `flagged` videos
    (damaged files scored from the frames that decoded); `failed` ones have no scores.
    `rows_scored` counts the rows with scores in the final table, earlier runs' included."""

    scored: int = 0
    flagged: int = 0
    failed: int = 0
    skipped: int = 0
    rows_scored: int = 0
    seconds: float = 0.0
    decode_seconds: float = 0.0
    wait_seconds: float = 0.0
    model_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # "failed: name: why" or "flagged: name: why"

    @classmethod
    def combine(cls, parts: list[ScoreSummary]) -> ScoreSummary:
        total = cls(seconds=max(p.seconds for p in parts))
        for part in parts:
            for name in ("scored", "flagged", "failed", "skipped", "decode_seconds", "wait_seconds", "model_seconds"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.errors += part.errors
        return total

    def __str__(self) -> str:
        rate = (self.scored + self.failed) / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.scored}" + (f" ({self.flagged} flagged as damaged)" if self.flagged else "")
            + f", failed {self.failed}, skipped {self.skipped} already done; "
            f"{self.seconds:.1f} s, {rate:.2f} videos/s (model {self.model_seconds:.1f} s; decoding "
            f"{self.decode_seconds:.1f} s of worker-thread time, the model waiting on it {self.wait_seconds:.1f} s)"
        )


def _partial_path(out: Path, rank: int) -> Path:
    return out.with_name(f".{out.name}.rank{rank}.partial.csv")


def _partial_paths(out: Path) -> list[Path]:
    """The partial files of every rank, those of earlier runs with another process count included."""
    prefix = f".{out.name}.rank"
    return sorted(p for p in out.parent.glob(".*.partial.csv") if p.name.startswith(prefix))


def _complete_rows(path: Path) -> pd.DataFrame:
    """The rows of a partial file, less a last line cut off by an interruption. Read only: the file
    may be another process's, still being appended to."""
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    if not data.strip():
        return pd.DataFrame(columns=COLUMNS)
    return _read_csv(io.BytesIO(data))


class _RowWriter:
    """Appends rows to this process's partial CSV and flushes them to disk, so an interruption loses
    nothing that was finished. Only the owner repairs its file (a last line cut off by a kill)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
        self._file = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if self._file.tell() == 0:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self._writer.writerows(rows)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _write_atomically(table: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        table.to_parquet(tmp, index=False)
    else:
        table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _merge(out: Path, order: list[str]) -> pd.DataFrame:
    """Fold the partial files into `out` (written atomically), rows in folder order, then delete them.
    A video scored twice (a resumed run) keeps its newest row."""
    partials = _partial_paths(out)
    parts = [read_table(out)] if out.exists() else []
    parts += [_complete_rows(p) for p in partials]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(parts, ignore_index=True).drop_duplicates("video_name", keep="last")
    position = {name: i for i, name in enumerate(order)}
    table = table.sort_values("video_name", key=lambda s: s.map(lambda n: position.get(n, len(order))), kind="stable")
    table = table[COLUMNS].reset_index(drop=True)
    _write_atomically(table, out)
    for path in partials:
        path.unlink(missing_ok=True)
    return table


# Scoring -----------------------------------------------------------------------------------------


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

    Videos are decoded ahead of the model in `decode_workers` threads. Rows are appended and
    flushed to a hidden partial file next to `out` as they come; a re-run with the same arguments
    skips the videos already in `out` or in partial files, so an interrupted run resumes. Under
    `accelerate launch` process k scores every n-th video starting at the k-th into its own partial
    file, and the main process merges them all, in folder order, into `out` (written atomically)
    once every process is done. A file that fails to decode or score gets a row with its `error`
    and the run goes on; a damaged file (truncated, bad packets) is scored from the frames that
    decoded, and flagged in `error`.

    Returns the summary of all processes, on every process.
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list, gather_object

    state = PartialState()
    root, out = Path(root), Path(out)
    prompts = prompts or {}
    videos = find_videos(root)
    names = [p.relative_to(root).as_posix() for p in videos]

    done: set[str] = set(read_table(out)["video_name"]) if out.exists() else set()
    for path in _partial_paths(out):
        done.update(_complete_rows(path)["video_name"])
    mine = range(state.process_index, len(videos), state.num_processes)
    jobs = [(videos[i], names[i], prompt, prompts, reward.num_frames) for i in mine if names[i] not in done]
    summary = ScoreSummary(skipped=len(mine) - len(jobs))

    start = time.perf_counter()
    writer = _RowWriter(_partial_path(out, state.process_index))
    bar = tqdm(total=len(jobs), unit=" videos", desc="scoring", disable=not progress or not state.is_local_main_process)
    try:
        with _warnings_to_rows():
            batch: list[_Decoded] = []
            window = max(2 * reward.batch_size, 2 * decode_workers)
            for item in _decode_ahead(jobs, decode_workers, window):
                summary.decode_seconds += item.seconds
                summary.wait_seconds += item.waited
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
    summary = ScoreSummary.combine(gather_object([summary]))
    if state.is_main_process:
        table = _merge(out, names)
        summary.rows_scored = int(table["reward"].notna().sum())
    summary.rows_scored = broadcast_object_list([summary.rows_scored])[0]
    return summary


def _score_batch(reward: VideoScoreReward, batch: list[_Decoded], summary: ScoreSummary) -> list[dict]:
    results: dict[str, dict | None] = {}
    good = [item for item in batch if item.frames is not None]
    start = time.perf_counter()
    try:
        if good:
            results = dict(zip((i.name for i in good), reward([i.frames for i in good], [i.prompt for i in good]).to_dicts()))
    except Exception:
        # Score one by one so that a single bad video does not take the batch down with it.
        for item in good:
            try:
                results[item.name] = reward([item.frames], [item.prompt]).to_dicts()[0]
            except Exception as error:
                item.error = f"{type(error).__name__}: {error}"
    summary.model_seconds += time.perf_counter() - start

    rows = []
    for item in batch:
        result = results.get(item.name)
        rows.append({
            "video_name": item.name,
            **{column: result[column] if result else float("nan") for column in _SCORE_COLUMNS},
            "prompt": item.prompt,
            "num_frames": 0 if item.frames is None else item.frames.shape[0],
            "error": item.error,
        })
        if result is None:
            summary.failed += 1
            summary.errors.append(f"failed: {item.name}: {item.error}")
        else:
            summary.scored += 1
            if item.error:
                summary.flagged += 1
                summary.errors.append(f"flagged: {item.name}: {item.error}")
    return rows
