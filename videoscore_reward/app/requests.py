"""What the app does with a request, without Gradio: uploads and prompts in, the page's messages,
tables and images out. Each handler takes the batch of requests Gradio's queue collected (one list
entry per request) and scores their videos together through `files.score_batch`."""

from __future__ import annotations

import hashlib
import html
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..files import describe, read_frames, score_batch
from ..reward import ASPECTS, SCORE_RANGE, VideoScoreReward
from ..reward.aspects import parse_weights, weighted_reward
from ..reward.video import Sampling
from ..spreadsheet import csv_text

MB = 1024 * 1024
THUMBNAIL_PX = 160
MAX_COMPARE = 16
"""Bounds what one Compare request uploads and how long it holds the model's worker."""
NOT_UPLOADED = "{} was not uploaded to this app: only files uploaded with the request are read."


@dataclass
class _Item:
    """One video of a request: its upload and prompt in; `scores` (float32 [5], 1-4 scale) or
    `error` out, plus thumbnails of the frames the model saw where asked for."""

    path: str | None
    prompt: str
    error: str | None = None
    scores: torch.Tensor | None = None
    thumbnails: list[tuple[np.ndarray, str]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else ""


def _read_upload(item: _Item, max_upload_mb: float, num_frames: Sampling,
                 uploaded: Callable[[str], bool] | None) -> torch.Tensor | None:
    """Check that `item.path` is an upload (`uploaded`, None: any path), check its size and decode
    the frames the reward samples from it: uint8 [T, 3, H, W], or None with `item.error` set.
    Messages name the upload by its file name, never the server's path."""
    if not item.path:
        item.error = "No video: upload a video file first."
        return None
    file, name = Path(item.path), item.name
    if uploaded is not None and not uploaded(item.path):  # refused before the file is touched
        item.error = NOT_UPLOADED.format(name)
        return None
    try:
        size = file.stat().st_size
    except OSError as error:
        item.error = str(error).replace(str(file), name)
        return None
    if size > max_upload_mb * MB:
        item.error = f"{name} is {size / MB:.1f} MB; uploads are limited to {max_upload_mb:g} MB."
        return None
    read = read_frames(file, num_frames)
    if read.error is not None:
        item.error = str(read.error).replace(str(file), name)
    elif read.damage is not None:
        item.notes = [read.damage.describe(name)]
    return read.frames


def score_items(reward: VideoScoreReward, items: list[_Item], max_upload_mb: float, *, thumbnails: bool,
                uploaded: Callable[[str], bool] | None = None) -> None:
    """Decode and score every item without an error, `reward.batch_size` videos per reward call, so
    at most that many decoded videos are held at once; fill in `scores` or `error` in place.
    `uploaded(path)` says whether a path is a file the app received (None: trust every path)."""
    todo = [item for item in items if item.error is None]
    for start in range(0, len(todo), reward.batch_size):
        chunk = todo[start : start + reward.batch_size]
        decoded = [(item, _read_upload(item, max_upload_mb, reward.sampling, uploaded)) for item in chunk]
        ready = [(item, frames) for item, frames in decoded if frames is not None]
        outcomes = score_batch(reward, [frames for _, frames in ready], [item.prompt for item, _ in ready])
        for (item, frames), outcome in zip(ready, outcomes):
            if isinstance(outcome, Exception):  # reaches the page as a message, not as a trace
                item.error = f"Scoring failed: {describe(outcome)}"
                continue
            item.scores = outcome.scores[0].float().cpu()
            if thumbnails:
                item.thumbnails = _thumbnails(frames)


def check_request(prompt: str, weights: Sequence[float], aspects: tuple[str, ...] = ASPECTS
                  ) -> tuple[str, torch.Tensor | None, str | None]:
    """The stripped prompt, the weight vector [A] over `aspects`, or a message saying what is wrong."""
    prompt = (prompt or "").strip()
    if not prompt:
        return prompt, None, "No prompt: type the text prompt the video was generated from."
    try:
        return prompt, parse_weights([float(w) for w in weights], aspects), None
    except (TypeError, ValueError) as error:
        return prompt, None, str(error)


def message_html(text: str, kind: str = "error") -> str:
    """A message for the page, escaped; `kind` "error" or "ok"."""
    style = ' style="color: var(--error-text-color, #b91c1c)"' if kind == "error" else ""
    return f'<div class="vs-message vs-{kind}"{style}>{html.escape(text)}</div>'


def scores_html(scores: torch.Tensor, reward_value: float, aspects: tuple[str, ...] = ASPECTS,
                score_range: tuple[float, float] = SCORE_RANGE) -> str:
    """The aspect scores and the reward, 3 decimals, as the table the page shows (and tests read)."""
    rows = "".join(
        f'<tr><td>{html.escape(aspect)}</td><td class="vs-score" data-aspect="{html.escape(aspect)}">{score:.3f}</td></tr>'
        for aspect, score in zip(aspects, scores.tolist())
    )
    return (
        f'<table class="vs-scores"><thead><tr><th>aspect</th><th>score ({score_range[0]:g}-{score_range[1]:g})</th></tr></thead>'
        f"<tbody>{rows}</tbody><tfoot><tr><th>weighted reward</th>"
        f'<th class="vs-reward">{reward_value:.3f}</th></tr></tfoot></table>'
    )


def _thumbnails(frames: torch.Tensor) -> list[tuple[np.ndarray, str]]:
    """uint8 [T, 3, H, W] -> one small RGB image per frame (longest side `THUMBNAIL_PX`) for display."""
    from PIL import Image

    thumbs = []
    for index, frame in enumerate(frames.permute(0, 2, 3, 1).numpy()):
        image = Image.fromarray(frame)
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        thumbs.append((np.asarray(image), f"frame {index + 1}"))
    return thumbs


def ranking(items: list[_Item], weights: torch.Tensor, normalize: str, aspects: tuple[str, ...] = ASPECTS,
            score_range: tuple[float, float] = SCORE_RANGE):
    """A DataFrame of the compared videos, best reward first, failed files last with their error."""
    import pandas as pd

    rows = []
    for item in items:
        row = {"video": item.name, **dict.fromkeys([*aspects, "reward"], float("nan")), "error": item.error or ""}
        if item.scores is not None:
            row.update(zip(aspects, item.scores.tolist()))
            row["reward"] = weighted_reward(item.scores[None], weights, normalize, score_range).item()
        rows.append(row)
    table = pd.DataFrame(rows, columns=["video", *aspects, "reward", "error"])
    table = table.sort_values("reward", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def score_videos(reward: VideoScoreReward, max_upload_mb: float, videos: list[str | None], prompts: list[str],
                 weight_lists: Sequence[list[float]], uploaded: Callable[[str], bool] | None = None):
    """The "Score a video" requests: for each, (message HTML, score table HTML, chart DataFrame or
    None, thumbnails or None), returned as four lists as Gradio's batched events expect. Only paths
    that `uploaded` accepts are read (see `score_items`)."""
    import pandas as pd

    items, weights = [], []
    for i, video in enumerate(videos):
        prompt, request_weights, problem = check_request(prompts[i], [w[i] for w in weight_lists], reward.aspects)
        items.append(_Item(video, prompt, error=problem))
        weights.append(request_weights)
    score_items(reward, items, max_upload_mb, thumbnails=True, uploaded=uploaded)
    messages, tables, charts, galleries = [], [], [], []
    for item, request_weights in zip(items, weights):
        if item.scores is None:
            messages.append(message_html(item.error))
            tables.append("")
            charts.append(None)
            galleries.append(None)
            continue
        value = weighted_reward(item.scores[None], request_weights, reward.normalize, reward.score_range).item()
        messages.append(message_html(" ".join([f"Scored {item.name}.", *item.notes]), "ok"))
        tables.append(scores_html(item.scores, value, reward.aspects, reward.score_range))
        charts.append(pd.DataFrame({"aspect": list(reward.aspects), "score": item.scores.tolist()}))
        galleries.append(item.thumbnails)
    return messages, tables, charts, galleries


def compare_videos(reward: VideoScoreReward, max_upload_mb: float, csv_dir: str | Path,
                   file_lists: list[list[str] | None], prompts: list[str], weight_lists: Sequence[list[float]],
                   uploaded: Callable[[str], bool] | None = None):
    """The "Compare" requests, the videos of all of them scored together: for each, (message HTML,
    ranking DataFrame or None, path of the ranking CSV written under `csv_dir` or None). Only paths
    that `uploaded` accepts are read (see `score_items`)."""
    requests = []
    for i, files in enumerate(file_lists):
        prompt, weights, problem = check_request(prompts[i], [w[i] for w in weight_lists], reward.aspects)
        if not problem and not files:
            problem = "No videos: upload two or more video files to compare."
        elif not problem and len(files) > MAX_COMPARE:
            problem = f"{len(files)} videos: Compare takes at most {MAX_COMPARE} at a time."
        items = [] if problem else [_Item(path, prompt) for path in files]
        requests.append((prompt, weights, problem, items))
    score_items(reward, [item for *_, items in requests for item in items], max_upload_mb, thumbnails=False,
                uploaded=uploaded)
    messages, tables, downloads = [], [], []
    for prompt, weights, problem, items in requests:
        failed = [item for item in items if item.scores is None]
        if problem or len(failed) == len(items):
            messages.append(message_html(problem or "No video could be scored: " + " ".join(i.error for i in failed)))
            tables.append(None)
            downloads.append(None)
            continue
        table = ranking(items, weights, reward.normalize, reward.aspects, reward.score_range)
        table.insert(len(table.columns) - 1, "prompt", prompt)
        csv = csv_text(table).encode()
        path = Path(csv_dir) / f"videoscore-ranking-{hashlib.sha256(csv).hexdigest()[:12]}.csv"
        path.write_bytes(csv)
        summary = f"Ranked {len(items) - len(failed)} video(s); best: {table['video'][0]}."
        if failed:
            summary += f" {len(failed)} could not be scored (see the error column)."
        messages.append(message_html(summary, "ok"))
        tables.append(table.drop(columns="prompt").round(3))
        downloads.append(str(path))
    return messages, tables, downloads


def compare_runs(out_dir: str | Path, run_a: str | None, run_b: str | None,
                 uploaded: Callable[[str], bool] | None = None) -> tuple[str, str, str | None]:
    """The "Compare runs" request: two scored tables (CSV or Parquet from `videoscore-reward score`) ->
    (message HTML, the `compare` report as an HTML fragment, path of the self-contained report.html
    written under a new folder of `out_dir`, or None). Needs the `[eval]` extra; no model. Only
    paths that `uploaded` accepts are read (see `score_items`)."""
    if not run_a or not run_b:
        return message_html("Upload two scored tables: run A (before) and run B (after)."), "", None
    for run in (run_a, run_b):
        if uploaded is not None and not uploaded(run):
            return message_html(NOT_UPLOADED.format(Path(run).name)), "", None
    try:
        from ..evaluation import TableError, compare
        from ..evaluation.report_html import compare_fragment, compare_html
    except ImportError as error:
        return message_html(str(error)), "", None
    a, b = Path(run_a), Path(run_b)
    names = (a.stem, b.stem) if a.stem != b.stem else ("run A", "run B")
    try:
        result = compare(a, b, names=names)
    except (TableError, ValueError) as error:  # message with the upload names, never the server's paths
        return message_html(str(error).replace(str(a), a.name).replace(str(b), b.name)), "", None
    out = Path(tempfile.mkdtemp(prefix="compare-", dir=out_dir))
    images = result.write_plots(out)
    report = out / "report.html"
    report.write_text(compare_html(result, images), encoding="utf-8")
    verdict = f"{len(result.flags)} aspect(s) flagged as possible reward hacking." if result.flags else "No reward hacking flagged."
    return message_html(f"Compared {names[0]} with {names[1]}. {verdict}", "ok"), compare_fragment(result, images), str(report)
