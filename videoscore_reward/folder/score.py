"""Scoring every video of a folder into a table: decoding runs ahead in threads, rows are flushed as
they come (an interrupted run resumes), and under `accelerate launch` the videos are sharded."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..files import describe, read_frames, score_batch
from ..reward import BaseReward
from ..reward.video import Sampling
from .find import SidecarError, find_videos, prompt_from_file_name, resolve_prompt
from .table import RowWriter, complete_rows, merge, partial_path, partial_paths, read_table, score_columns


@dataclass
class _QueuedVideo:
    """A video read in a decode thread, waiting for its batch: its row's name, prompt and error."""

    name: str
    prompt: str = ""
    frames: torch.Tensor | None = None
    error: str = ""
    seconds: float = 0.0  # decoding, in its worker thread
    waited: float = 0.0  # the scoring loop waiting for it


def _read_queued(path: Path, name: str, prompt: str | None, prompts: Mapping[str, str], num_frames: Sampling) -> _QueuedVideo:
    """Runs in a decode thread; never raises, a failure becomes the row's `error`."""
    start = time.perf_counter()
    item = _QueuedVideo(name)
    problems = []
    if path.is_dir():  # a subfolder that could not be listed (see `find_videos`)
        item.error = f"PermissionError: cannot list the folder {name}: the videos in it were not scored"
        item.seconds = time.perf_counter() - start
        return item
    try:
        item.prompt = resolve_prompt(path, name, prompt, prompts)
    except SidecarError as error:  # the video is still scored, with the file-name prompt, and flagged
        item.prompt = prompt_from_file_name(path)
        problems.append(f"{describe(error)}; scored with the file-name prompt")
    read = read_frames(path, num_frames)
    item.frames = read.frames
    if read.error is not None:
        problems.append(describe(read.error))
    elif read.damage is not None:  # scored from the frames that decoded, and flagged
        problems.append(read.damage.describe(path))
    item.error = "; ".join(problems)
    item.seconds = time.perf_counter() - start
    return item


def _read_ahead(jobs: list, workers: int, window: int) -> Iterator[_QueuedVideo]:
    """Read `jobs` (argument tuples of `_read_queued`) in worker threads (PyAV releases the GIL) and
    yield them in order, keeping at most `window` videos in flight; each item's `waited` is how
    long the caller waited for it."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        todo = iter(jobs)
        pending: deque[Future] = deque(pool.submit(_read_queued, *job) for job in islice(todo, window))
        try:
            while pending:
                start = time.perf_counter()
                item = pending.popleft().result()
                item.waited = time.perf_counter() - start
                pending.extend(pool.submit(_read_queued, *job) for job in islice(todo, 1))
                yield item
        finally:  # stopped early (an interruption): do not decode what nobody will read
            for future in pending:
                future.cancel()


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
        """The summary of all processes from each one's."""
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


def score_folder(
    reward: BaseReward,
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
    for path in partial_paths(out):
        done.update(complete_rows(path, reward.aspects)["video_name"])
    mine = range(state.process_index, len(videos), state.num_processes)
    jobs = [(videos[i], names[i], prompt, prompts, reward.sampling) for i in mine if names[i] not in done]
    summary = ScoreSummary(skipped=len(mine) - len(jobs))

    start = time.perf_counter()
    writer = RowWriter(partial_path(out, state.process_index), reward.aspects)
    bar = tqdm(total=len(jobs), unit=" videos", desc="scoring", disable=not progress or not state.is_local_main_process)
    try:
        batch: list[_QueuedVideo] = []
        window = max(2 * reward.batch_size, 2 * decode_workers)
        for item in _read_ahead(jobs, decode_workers, window):
            summary.decode_seconds += item.seconds
            summary.wait_seconds += item.waited
            batch.append(item)
            if len(batch) == reward.batch_size:
                writer.write(_score_rows(reward, batch, summary))
                bar.update(len(batch))
                batch = []
        if batch:
            writer.write(_score_rows(reward, batch, summary))
            bar.update(len(batch))
    finally:
        bar.close()
        writer.close()
        summary.seconds = time.perf_counter() - start

    state.wait_for_everyone()
    summary = ScoreSummary.combine(gather_object([summary]))
    if state.is_main_process:
        table = merge(out, names, reward.aspects)
        summary.rows_scored = int(table["reward"].notna().sum())
    summary.rows_scored = broadcast_object_list([summary.rows_scored])[0]
    return summary


def _score_rows(reward: BaseReward, batch: list[_QueuedVideo], summary: ScoreSummary) -> list[dict]:
    """Score a batch and return its table rows, one per video, failures included."""
    good = [item for item in batch if item.frames is not None]
    start = time.perf_counter()
    outcomes = score_batch(reward, [i.frames for i in good], [i.prompt for i in good])
    summary.model_seconds += time.perf_counter() - start
    results: dict[str, dict] = {}
    for item, outcome in zip(good, outcomes):
        if isinstance(outcome, Exception):
            item.error = describe(outcome)
        else:
            results[item.name] = outcome.to_dicts()[0]

    rows = []
    for item in batch:
        result = results.get(item.name)
        rows.append({
            "video_name": item.name,
            **{column: result[column] if result else float("nan") for column in score_columns(reward.aspects)},
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
