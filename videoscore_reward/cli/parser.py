"""The command line's arguments: one subcommand each for score, organize, upload, app, serve, evaluate,
compare and stability, with argument types that fail in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from .checks import OneLineParser, port_number, positive_float

DESCRIPTION = (
    "Score a folder of videos with VideoScore, organise it into a dataset, upload it, serve the app or the "
    "reward, and check the reward (evaluate against human labels, compare two runs, stability under "
    "transformations)."
)

DEFAULT_MODEL = "TIGER-Lab/VideoScore-v1.1"


def weights_argument(text: str) -> dict[str, float]:
    """The argparse type of `--weights`: `"text-to-video alignment=2,dynamic degree=0.5"` -> {aspect:
    weight}, checked by the reward core's `parse_weights` against the aspects of every model family
    (an `ArgumentTypeError` says what is wrong); the loaded model then checks its own."""
    from ..reward.aspects import parse_weights as check
    from ..reward.checkpoints import FAMILIES

    weights = _weight_pairs(text)
    known = tuple(dict.fromkeys(a for family in FAMILIES.values() for a in family.aspects))
    try:
        check(weights, known)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return weights


def _weight_pairs(text: str) -> dict[str, float]:
    """`"NAME=NUMBER,..."` -> {name: number}; the names are checked by whoever knows the aspects."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition("=")
        if name.strip() in weights:
            raise argparse.ArgumentTypeError(f"aspect {name.strip()!r} is given twice; give each aspect one weight")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError(f"bad weight {part!r}: expected 'ASPECT=NUMBER', e.g. 'dynamic degree=0.5'")
    return weights


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _dtype(name: str):
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(dtypes)}, got {name!r}")
    return dtypes[name]


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id or local folder (default {DEFAULT_MODEL}, or TIGER-Lab/VideoScore2); 'tiny-random' "
                             "and 'tiny-random-videoscore2' run offline, with meaningless scores")
    parser.add_argument("--num-frames", type=_positive_int, default=None,
                        help="frames per video (default: the checkpoint's, 16 or 48; VideoScore2 takes 2 per second)")
    parser.add_argument("--mode", choices=("forced", "official"), default=None,
                        help="VideoScore2 only: 'forced' (default; one forward pass, deterministic) or 'official' "
                             "(generates as vs2_inference.py, sampling; unparsable answers become error rows)")
    parser.add_argument("--device", default=None, help="e.g. cuda, cuda:1, cpu (default: accelerate's device for this process)")
    parser.add_argument("--dtype", type=_dtype, default=None, help="float32, bfloat16 or float16 (default: bfloat16 on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    """The `videoscore-reward` parser: one subcommand per job, each with its own options."""
    parser = OneLineParser(prog="videoscore-reward", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score every video below a folder into a CSV or Parquet table")
    score.add_argument("dir", type=Path)
    prompt = score.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="", help="prompt for all videos; empty (default): a sidecar NAME.txt, else the file name")
    prompt.add_argument("--prompts-csv", type=Path, default=None, help="CSV with columns video_name (or file_name) and prompt")
    score.add_argument("--out", type=Path, default=None, help="output .csv or .parquet (default DIR/evaluation_results.csv)")
    _add_model_arguments(score)
    score.add_argument("--batch-size", type=_positive_int, default=8)
    score.add_argument("--weights", type=weights_argument, default=None, help='e.g. "text-to-video alignment=2,dynamic degree=0.5"')
    score.add_argument("--decode-workers", type=_positive_int, default=4, help="threads decoding videos ahead of the model")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")

    organize = commands.add_parser("organize", help="copy a scored folder into a Hugging Face videofolder dataset")
    organize.add_argument("dir", type=Path)
    organize.add_argument("--scores", type=Path, required=True, help="the table written by `score`")
    organize.add_argument("--out", type=Path, required=True)
    organize.add_argument("--prefix", default="", help="text put before every prompt")
    organize.add_argument("--dry-run", action="store_true", help="say what would be copied, write nothing")

    upload = commands.add_parser("upload", help="upload an organised folder as a Hub dataset repo")
    upload.add_argument("folder", type=Path)
    upload.add_argument("repo_id")
    upload.add_argument("--private", action="store_true")

    app = commands.add_parser("app", help="serve the scoring web app (needs the [app] extra)")
    _add_model_arguments(app)
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=port_number, default=7860)
    app.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    app.add_argument("--max-upload-mb", type=positive_float, default=200, help="uploads above this size are refused")
    _add_evaluation_commands(commands)

    serve = commands.add_parser("serve", help="serve the reward over HTTP on Ray Serve, batching requests (needs the [serve] extra)")
    _add_model_arguments(serve)
    serve.add_argument("--weights", type=weights_argument, default=None, help='e.g. "text-to-video alignment=2,dynamic degree=0.5"')
    serve.add_argument("--normalize", choices=("raw", "unit"), default="raw", help="reward on the model's scale or in [0, 1]")
    serve.add_argument("--batch-size", type=_positive_int, default=8, help="videos per forward pass")
    serve.add_argument("--host", default="127.0.0.1", help="any other address needs a bearer token")
    serve.add_argument("--port", type=port_number, default=8000)
    serve.add_argument("--token", default=None, help="bearer token clients must send (default: $VIDEOSCORE_REWARD_TOKEN)")
    serve.add_argument("--num-replicas", type=_positive_int, default=1, help="copies of the model, each on its own GPU(s)")
    serve.add_argument("--gpus-per-replica", type=float, default=None, help="default 1 when Ray sees a GPU, else 0")
    serve.add_argument("--cpus-per-replica", type=float, default=1)
    serve.add_argument("--max-batch-size", type=_positive_int, default=16, help="videos of concurrent requests merged into one call")
    serve.add_argument("--batch-wait-ms", type=float, default=10, help="how long a request waits for others to batch with")
    serve.add_argument("--max-request-mb", type=float, default=512, help="larger request bodies are refused (413)")
    serve.add_argument("--address", default=None, help="Ray cluster to join (e.g. 'auto'); default: start Ray on this machine")
    return parser


def _add_evaluation_commands(commands) -> None:
    def statistics(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="folder for the report and the plots")
        parser.add_argument("--resamples", type=_positive_int, default=1000, help="bootstrap resamples (default 1000)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")

    evaluate = commands.add_parser("evaluate", help="agreement of scores with human ratings and preferences (needs [eval])")
    evaluate.add_argument("scores", type=Path, help="the table written by `score`")
    evaluate.add_argument("labels", type=Path, nargs="+",
                          help="ratings CSV (video_name, one column per aspect) and/or pairs CSV (video_a, video_b, preference a/b/tie)")
    evaluate.add_argument("--pair-score", default="mean", help="what predicts a preference: mean (of the aspects, default), reward, or an aspect")
    evaluate.add_argument("--tie-margin", type=float, default=0.05, help="scores closer than this predict a tie (default 0.05)")
    statistics(evaluate)

    compare = commands.add_parser("compare", help="two scored runs: shifts per aspect, reward hacking, plots, HTML (needs [eval])")
    compare.add_argument("run_a", type=Path, help="scores before (e.g. the base model)")
    compare.add_argument("run_b", type=Path, help="scores after (e.g. the fine-tuned model)")
    compare.add_argument("--weights", type=_weight_pairs, default=None,
                         help="the weights the fine-tuning optimised, e.g. 'visual quality=1' (default: each run's reward column)")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    compare.add_argument("--top", type=_positive_int, default=5, help="prompts listed as gained and lost most (default 5)")
    compare.add_argument("--fail-on-hacking", action="store_true", help="exit with code 3 when an aspect is flagged")
    statistics(compare)

    stability = commands.add_parser("stability", help="score change under re-encoding, downscaling, fps change, mirroring (needs [eval])")
    stability.add_argument("dir", type=Path)
    stability.add_argument("--out", type=Path, default=None, help="folder for the table and the plot (default DIR/stability)")
    stability.add_argument("--transforms", type=lambda t: [n.strip() for n in t.split(",") if n.strip()], default=None,
                           help="comma-separated, e.g. 'crf 23,240p,mirror' (default: all)")
    prompt = stability.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="", help="prompt for all videos (default: as `score` finds them)")
    prompt.add_argument("--prompts-csv", type=Path, default=None, help="CSV with columns video_name (or file_name) and prompt")
    _add_model_arguments(stability)
    stability.add_argument("--batch-size", type=_positive_int, default=8)
    stability.add_argument("--workers", type=_positive_int, default=4, help="threads writing transformed videos")
    stability.add_argument("--no-progress", action="store_true", help="no progress bar")
