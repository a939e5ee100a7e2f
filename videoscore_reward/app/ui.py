"""The Gradio page of the app: layout, queue and launch; what a request does is in `requests`."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import torch

from ..extras import require
from ..reward import VideoScoreReward
from .requests import MB, compare_runs, compare_videos, score_videos

logger = logging.getLogger(__name__)

__all__ = ["build_app", "launch"]

_CONCURRENCY_ID = "videoscore-model"
_TINY_NOTE = (
    "**This is a tiny random checkpoint (`tiny-random` or a `testing.tiny_checkpoint` folder): its scores "
    "are meaningless.** It is there to try the app offline; start it with a real VideoScore checkpoint "
    "(e.g. `--model TIGER-Lab/VideoScore-v1.1`) for real scores."
)


def _import_gradio():
    require("app", "The web app")
    import gradio

    return gradio


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
    csv_dir = tempfile.TemporaryDirectory(prefix="videoscore-app-")

    examples_cached: set[str] = set()

    def uploaded(path: str) -> bool:
        # Gradio itself refuses request paths outside its upload folder; that folder is shared with
        # every Gradio app and output of this machine, so only what this server's /upload wrote
        # (and the app's own examples) is read.
        return path in demo.upload_file_set or path in examples_cached

    def score(videos: list[str | None], prompts: list[str], *weight_lists: list[float]):
        return score_videos(reward, max_upload_mb, videos, prompts, weight_lists, uploaded=uploaded)

    def compare(file_lists: list[list[str] | None], prompts: list[str], *weight_lists: list[float]):
        return compare_videos(reward, max_upload_mb, csv_dir.name, file_lists, prompts, weight_lists, uploaded=uploaded)

    batching = dict(batch=True, max_batch_size=reward.batch_size, concurrency_id=_CONCURRENCY_ID, concurrency_limit=1)
    low, high = reward.score_range
    with gr.Blocks(title="VideoScore reward") as demo:
        gr.Markdown(
            f"# VideoScore reward\nScores a video against its text prompt on {len(reward.aspects)} aspects, each on "
            f"the model's {low:g}-{high:g} scale ({low:g} bad, {high:g} best), and weighs them into one reward "
            f"({reward.normalize!r} normalization). The model looks at "
            + (f"{reward.num_frames} frames per video." if reward.num_frames else "2 frames per second of video.")
        )
        if reward.is_tiny_random:
            gr.Markdown(_TINY_NOTE, elem_id="vs-tiny-note")
        with gr.Accordion("Aspect weights (for the reward)", open=False):
            with gr.Row():
                sliders = [
                    gr.Slider(0, 5, value=float(w), step=0.1, label=aspect)
                    for aspect, w in zip(reward.aspects, reward.weights.tolist())
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
                            examples_cached.update(video.temp_files)  # the examples' copies in Gradio's cache
                    with gr.Column():
                        score_message = gr.HTML(elem_id="vs-score-message")
                        score_table = gr.HTML(elem_id="vs-score-table")
                        chart = gr.BarPlot(
                            x="aspect", y="score", y_lim=[0, high], sort=list(reward.aspects),
                            x_label_angle=-20, label=f"Scores ({low:g}-{high:g})", elem_id="vs-chart",
                        )
                gallery = gr.Gallery(
                    label="Frames the model saw", columns=8, height="auto", object_fit="contain", elem_id="vs-frames"
                )
                score_button.click(
                    score, [video, prompt, *sliders], [score_message, score_table, chart, gallery],
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
                    compare, [files, compare_prompt, *sliders], [compare_message, ranking, download],
                    api_name="compare", **batching,
                )
            with gr.Tab("Compare runs"):
                gr.Markdown(
                    "Two tables from `videoscore-reward score` (before and after fine-tuning, or two checkpoints): "
                    "how each aspect moved, and any aspect that fell while the reward rose (reward hacking)."
                )
                with gr.Row():
                    run_a = gr.File(label="Run A (before)", file_types=[".csv", ".parquet"], elem_id="vs-run-a")
                    run_b = gr.File(label="Run B (after)", file_types=[".csv", ".parquet"], elem_id="vs-run-b")
                runs_button = gr.Button("Compare runs", variant="primary", elem_id="vs-runs-button")
                runs_message = gr.HTML(elem_id="vs-runs-message")
                runs_download = gr.File(label="Report (one HTML file)", elem_id="vs-runs-download")
                runs_report = gr.HTML(elem_id="vs-runs-report")
                runs_button.click(  # statistics only: not the model's queue
                    lambda a, b: compare_runs(csv_dir.name, a, b, uploaded), [run_a, run_b], [runs_message, runs_report, runs_download],
                    api_name="compare_runs",
                )
    _refuse_files_per_request(demo)
    return demo


def _refuse_files_per_request(demo) -> None:
    """Gradio preprocesses each request of a batch in turn and fails the whole batch when one names a
    file it refuses (a server path: `InvalidPathError`). Here only that request loses its files: it
    is preprocessed again with its file inputs empty, and gets the page's "No video" message."""
    from gradio.exceptions import InvalidPathError
    from gradio_client.utils import is_file_obj_with_meta, traverse

    preprocess = demo.preprocess_data

    def names_a_file(value) -> bool:
        found = []
        traverse(value, lambda file: found.append(file) or file, is_file_obj_with_meta)
        return bool(found)

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await preprocess(block_fn, inputs, state, explicit_call)
        except InvalidPathError as error:
            logger.warning("Refused a request's files: %s", error)
            inputs = [None if names_a_file(value) else value for value in inputs]
            return await preprocess(block_fn, inputs, state, explicit_call)

    demo.preprocess_data = preprocess_data


def _serve(demo, *, host: str, port: int, share: bool, max_upload_mb: float, **options) -> None:
    """Start `demo` with the app's safety settings; `options` go to `Blocks.launch` (tests pass
    `prevent_thread_lock=True`)."""
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=int(max_upload_mb * MB),
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
