"""The scoring web app (`videoscore-reward app`, needs the `[app]` extra).

Two tabs on one loaded `VideoScoreReward`:

- "Score a video": one upload (or an example) and its prompt -> the five aspect scores on the 1-4
  scale as a table and a bar chart, the weighted reward, and the sampled frames as thumbnails.
- "Compare": several videos for one prompt, ranked by reward (the best-of-N view), with the table as
  a CSV download.

Both events go through Gradio's queue with batching and share one worker, so requests that arrive
together are scored in one reward call (per `reward.batch_size` videos) and the model is never run
from two threads at once. Frames come
from `load_video` and scores from the reward call; the app does no preprocessing of its own.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .reward import ASPECTS, SCORE_RANGE, VideoScoreReward, load_video
from .reward.aspects import parse_weights, weighted_reward

logger = logging.getLogger(__name__)

__all__ = ["build_app", "launch"]

_MB = 1024 * 1024
_THUMBNAIL_PX = 160
# Bounds what one Compare request uploads and how long it holds the model's worker.
_MAX_COMPARE = 16
_CONCURRENCY_ID = "videoscore-model"
_TINY_NOTE = (
    "**This is a tiny random checkpoint (`tiny-random` or a `testing.tiny_checkpoint` folder): its scores "
    "are meaningless.** It is there to try the app offline; start it with a real VideoScore checkpoint "
    "(e.g. `--model TIGER-Lab/VideoScore-v1.1`) for real scores."
)


def _import_gradio():
    try:
        import gradio
    except ImportError as error:
        raise ImportError("The web app needs gradio: pip install 'videoscore-reward[app]'") from error
    return gradio


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


def _decode(item: _Item, max_upload_mb: float, num_frames: int | None) -> torch.Tensor | None:
    """Check one upload's size and decode the frames the reward samples from it: uint8 [T, 3, H, W],
    or None with `item.error` set. Messages name the upload by its file name, never the server's path."""
    if not item.path:
        item.error = "No video: upload a video file first."
        return None
    file, name = Path(item.path), item.name
    try:
        size = file.stat().st_size
        if size > max_upload_mb * _MB:
            item.error = f"{name} is {size / _MB:.1f} MB; uploads are limited to {max_upload_mb:g} MB."
            return None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frames = load_video(file, num_frames=num_frames)
    except (ValueError, OSError) as error:  # VideoLoadError is a ValueError
        item.error = str(error).replace(str(file), name)
        return None
    item.notes = [str(w.message).replace(str(file), name) for w in caught]
    return frames


def _score(reward: VideoScoreReward, items: list[_Item], max_upload_mb: float, *, thumbnails: bool) -> None:
    """Decode and score every item without an error, `reward.batch_size` videos per reward call, so
    at most that many decoded videos are held at once; fill in `scores` or `error` in place."""
    todo = [item for item in items if item.error is None]
    for start in range(0, len(todo), reward.batch_size):
        chunk = todo[start : start + reward.batch_size]
        decoded = [(item, _decode(item, max_upload_mb, reward.num_frames)) for item in chunk]
        ready = [(item, frames) for item, frames in decoded if frames is not None]
        if not ready:
            continue
        try:
            out = reward([frames for _, frames in ready], [item.prompt for item, _ in ready])
        except Exception as error:  # a failed batch must reach the page as a message, not as a trace
            logger.exception("Scoring %d video(s) failed", len(ready))
            for item, _ in ready:
                item.error = f"Scoring failed: {type(error).__name__}: {error}"
            continue
        for (item, frames), scores in zip(ready, out.scores.float().cpu()):
            item.scores = scores
            if thumbnails:
                item.thumbnails = _thumbnails(frames)


def _check_request(prompt: str, weights: Sequence[float]) -> tuple[str, torch.Tensor | None, str | None]:
    """The stripped prompt, the weight vector [5], or a message saying what is wrong."""
    prompt = (prompt or "").strip()
    if not prompt:
        return prompt, None, "No prompt: type the text prompt the video was generated from."
    try:
        return prompt, parse_weights([float(w) for w in weights]), None
    except (TypeError, ValueError) as error:
        return prompt, None, str(error)


def _message(text: str, kind: str = "error") -> str:
    style = ' style="color: var(--error-text-color, #b91c1c)"' if kind == "error" else ""
    return f'<div class="vs-message vs-{kind}"{style}>{html.escape(text)}</div>'


def _scores_html(scores: torch.Tensor, reward_value: float) -> str:
    """The five scores and the reward, 3 decimals, as the table the page shows (and tests read)."""
    rows = "".join(
        f'<tr><td>{html.escape(aspect)}</td><td class="vs-score" data-aspect="{html.escape(aspect)}">{score:.3f}</td></tr>'
        for aspect, score in zip(ASPECTS, scores.tolist())
    )
    return (
        '<table class="vs-scores"><thead><tr><th>aspect</th><th>score (1-4)</th></tr></thead>'
        f"<tbody>{rows}</tbody><tfoot><tr><th>weighted reward</th>"
        f'<th class="vs-reward">{reward_value:.3f}</th></tr></tfoot></table>'
    )


def _thumbnails(frames: torch.Tensor) -> list[tuple[np.ndarray, str]]:
    """uint8 [T, 3, H, W] -> one small RGB image per frame (longest side `_THUMBNAIL_PX`) for display."""
    from PIL import Image

    thumbs = []
    for index, frame in enumerate(frames.permute(0, 2, 3, 1).numpy()):
        image = Image.fromarray(frame)
        image.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX))
        thumbs.append((np.asarray(image), f"frame {index + 1}"))
    return thumbs


def _ranking(items: list[_Item], weights: torch.Tensor, normalize: str):
    """A DataFrame of the compared videos, best reward first, failed files last with their error."""
    import pandas as pd

    rows = []
    for item in items:
        row = {"video": item.name, **dict.fromkeys([*ASPECTS, "reward"], float("nan")), "error": item.error or ""}
        if item.scores is not None:
            row.update(zip(ASPECTS, item.scores.tolist()))
            row["reward"] = weighted_reward(item.scores[None], weights, normalize).item()
        rows.append(row)
    table = pd.DataFrame(rows, columns=["video", *ASPECTS, "reward", "error"])
    table = table.sort_values("reward", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def build_app(
    reward: VideoScoreReward,
    *,
    max_upload_mb: float = 200,
    examples: Sequence[tuple[str | os.PathLike, str]] | None = None,
):
    """The app as a `gradio.Blocks` around an already loaded `reward`; `launch` serves it.

    max_upload_mb: larger uploads get a message instead of a score (`launch` also has Gradio refuse
    them at upload time).
    examples: (video file, prompt) pairs offered under the "Score a video" inputs.
    Requests are queued and batched: up to `reward.batch_size` requests become one reward call.
    """
    gr = _import_gradio()
    import pandas as pd

    csv_dir = tempfile.TemporaryDirectory(prefix="videoscore-app-")

    def score_videos(videos: list[str | None], prompts: list[str], *weight_lists: list[float]):
        """Batched handler of "Score a video": one list entry per queued request."""
        items, weights = [], []
        for i, video in enumerate(videos):
            prompt, request_weights, problem = _check_request(prompts[i], [w[i] for w in weight_lists])
            items.append(_Item(video, prompt, error=problem))
            weights.append(request_weights)
        _score(reward, items, max_upload_mb, thumbnails=True)
        messages, tables, charts, galleries = [], [], [], []
        for item, request_weights in zip(items, weights):
            if item.scores is None:
                messages.append(_message(item.error))
                tables.append("")
                charts.append(None)
                galleries.append(None)
                continue
            value = weighted_reward(item.scores[None], request_weights, reward.normalize).item()
            messages.append(_message(" ".join([f"Scored {item.name}.", *item.notes]), "ok"))
            tables.append(_scores_html(item.scores, value))
            charts.append(pd.DataFrame({"aspect": list(ASPECTS), "score": item.scores.tolist()}))
            galleries.append(item.thumbnails)
        return messages, tables, charts, galleries

    def compare_videos(file_lists: list[list[str] | None], prompts: list[str], *weight_lists: list[float]):
        """Batched handler of "Compare": the videos of all queued requests scored together."""
        requests = []
        for i, files in enumerate(file_lists):
            prompt, weights, problem = _check_request(prompts[i], [w[i] for w in weight_lists])
            if not problem and not files:
                problem = "No videos: upload two or more video files to compare."
            elif not problem and len(files) > _MAX_COMPARE:
                problem = f"{len(files)} videos: Compare takes at most {_MAX_COMPARE} at a time."
            items = [] if problem else [_Item(path, prompt) for path in files]
            requests.append((prompt, weights, problem, items))
        _score(reward, [item for *_, items in requests for item in items], max_upload_mb, thumbnails=False)
        messages, tables, downloads = [], [], []
        for prompt, weights, problem, items in requests:
            failed = [item for item in items if item.scores is None]
            if problem or len(failed) == len(items):
                messages.append(_message(problem or "No video could be scored: " + " ".join(i.error for i in failed)))
                tables.append(None)
                downloads.append(None)
                continue
            table = _ranking(items, weights, reward.normalize)
            table.insert(len(table.columns) - 1, "prompt", prompt)
            csv = table.to_csv(index=False).encode()
            path = Path(csv_dir.name) / f"videoscore-ranking-{hashlib.sha256(csv).hexdigest()[:12]}.csv"
            path.write_bytes(csv)
            summary = f"Ranked {len(items) - len(failed)} video(s); best: {table['video'][0]}."
            if failed:
                summary += f" {len(failed)} could not be scored (see the error column)."
            messages.append(_message(summary, "ok"))
            tables.append(table.drop(columns="prompt").round(3))
            downloads.append(str(path))
        return messages, tables, downloads

    batching = dict(batch=True, max_batch_size=reward.batch_size, concurrency_id=_CONCURRENCY_ID, concurrency_limit=1)
    with gr.Blocks(title="VideoScore reward") as demo:
        gr.Markdown(
            "# VideoScore reward\nScores a video against its text prompt on five aspects, each on VideoScore's "
            f"{SCORE_RANGE[0]:g}-{SCORE_RANGE[1]:g} scale (1 bad, 4 like a real video), and weighs them into one reward "
            f"({reward.normalize!r} normalization). The model looks at {reward.num_frames} frames per video."
        )
        if reward.is_tiny_random:
            gr.Markdown(_TINY_NOTE, elem_id="vs-tiny-note")
        with gr.Accordion("Aspect weights (for the reward)", open=False):
            with gr.Row():
                sliders = [
                    gr.Slider(0, 5, value=float(w), step=0.1, label=aspect)
                    for aspect, w in zip(ASPECTS, reward.weights.tolist())
                ]
        with gr.Tabs():
            with gr.Tab("Score a video"):
                with gr.Row():
                    with gr.Column():
                        video = gr.Video(label="Video", sources=["upload"], elem_id="vs-video")
                        prompt = gr.Textbox(label="Prompt", placeholder="the text prompt of the video", elem_id="vs-prompt")
                        score_button = gr.Button("Score", variant="primary", elem_id="vs-score-button")
                        if examples:
                            gr.Examples([[os.fspath(p), text] for p, text in examples], inputs=[video, prompt])
                    with gr.Column():
                        score_message = gr.HTML(elem_id="vs-score-message")
                        score_table = gr.HTML(elem_id="vs-score-table")
                        chart = gr.BarPlot(
                            x="aspect", y="score", y_lim=[0, SCORE_RANGE[1]], sort=list(ASPECTS),
                            x_label_angle=-20, label="Scores (1-4)", elem_id="vs-chart",
                        )
                gallery = gr.Gallery(
                    label="Frames the model saw", columns=8, height="auto", object_fit="contain", elem_id="vs-frames"
                )
                score_button.click(
                    score_videos, [video, prompt, *sliders], [score_message, score_table, chart, gallery],
                    api_name="score", **batching,
                )
            with gr.Tab("Compare"):
                with gr.Row():
                    with gr.Column():
                        files = gr.File(label="Videos", file_count="multiple", elem_id="vs-compare-files")
                        compare_prompt = gr.Textbox(label="Prompt (the same for all videos)", elem_id="vs-compare-prompt")
                        compare_button = gr.Button("Rank", variant="primary", elem_id="vs-compare-button")
                    with gr.Column():
                        compare_message = gr.HTML(elem_id="vs-compare-message")
                        download = gr.File(label="Ranking as CSV", elem_id="vs-compare-csv")
                ranking = gr.Dataframe(label="Ranking (best reward first)", interactive=False, elem_id="vs-ranking")
                compare_button.click(
                    compare_videos, [files, compare_prompt, *sliders], [compare_message, ranking, download],
                    api_name="compare", **batching,
                )
    return demo


def _serve(demo, *, host: str, port: int, share: bool, max_upload_mb: float, **options) -> None:
    """Start `demo` with the app's safety settings; `options` go to `Blocks.launch` (tests pass
    `prevent_thread_lock=True`)."""
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=int(max_upload_mb * _MB),
        show_error=False,
        **options,
    )


def launch(
    model: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    num_frames: int | None = None,
    max_upload_mb: float = 200,
) -> None:
    """Load `model` once (hub id, local folder, or "tiny-random") and serve the app until interrupted.

    host defaults to 127.0.0.1 (this machine only); `share=True` makes a public gradio.live link.
    Uploads above `max_upload_mb` are refused.
    """
    _import_gradio()
    reward = VideoScoreReward.from_pretrained(model, device=device, dtype=dtype, num_frames=num_frames)
    logger.info("Loaded %r", reward)
    _serve(build_app(reward, max_upload_mb=max_upload_mb), host=host, port=port, share=share, max_upload_mb=max_upload_mb)
