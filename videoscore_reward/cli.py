"""The `videoscore-reward` command: score a folder, organise it into a dataset, upload it, serve the app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_MODEL = "TIGER-Lab/VideoScore-v1.1"


def parse_weights(text: str) -> dict[str, float]:
    """`"text-to-video alignment=2,dynamic degree=0.5"` -> {aspect: weight}, checked by the reward core."""
    from .reward.aspects import parse_weights as check

    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError(f"bad weight {part!r}: expected 'ASPECT=NUMBER', e.g. 'dynamic degree=0.5'")
    try:
        check(weights)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
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
                        help=f"hub id or local folder (default {DEFAULT_MODEL}); 'tiny-random' runs offline, with meaningless scores")
    parser.add_argument("--num-frames", type=_positive_int, default=None, help="frames per video (default: the checkpoint's, 16 or 48)")
    parser.add_argument("--device", default=None, help="e.g. cuda, cuda:1, cpu (default: accelerate's device for this process)")
    parser.add_argument("--dtype", type=_dtype, default=None, help="float32, bfloat16 or float16 (default: bfloat16 on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoscore-reward", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score every video below a folder into a CSV or Parquet table")
    score.add_argument("dir", type=Path)
    prompt = score.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", default="", help="prompt for all videos; empty (default): a sidecar NAME.txt, else the file name")
    prompt.add_argument("--prompts-csv", type=Path, default=None, help="CSV with columns video_name (or file_name) and prompt")
    score.add_argument("--out", type=Path, default=None, help="output .csv or .parquet (default DIR/evaluation_results.csv)")
    _add_model_arguments(score)
    score.add_argument("--batch-size", type=_positive_int, default=8)
    score.add_argument("--weights", type=parse_weights, default=None, help='e.g. "text-to-video alignment=2,dynamic degree=0.5"')
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
    app.add_argument("--port", type=int, default=7860)
    app.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    app.add_argument("--max-upload-mb", type=float, default=200, help="uploads above this size are refused")
    return parser


def _error(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _score(args) -> int:
    from accelerate import PartialState

    from .folder import VIDEO_EXTENSIONS, read_prompts_csv, score_folder
    from .reward import VideoScoreReward

    if not args.dir.is_dir():
        return _error(f"{args.dir} is not a directory", 2)
    out = args.out or args.dir / "evaluation_results.csv"
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _error(f"--out must end in .csv or .parquet, got {out}", 2)
    try:
        prompts = read_prompts_csv(args.prompts_csv) if args.prompts_csv else None
    except (OSError, ValueError) as error:
        return _error(f"--prompts-csv: {_first_line(error)}", 2)
    if args.no_progress:  # the bars of model loading too, not only ours
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils.logging import disable_progress_bar

        disable_progress_bars()
        disable_progress_bar()
    try:
        reward = VideoScoreReward.from_pretrained(
            args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames,
            weights=args.weights, batch_size=args.batch_size,
        )
    except (OSError, ValueError) as error:
        return _error(f"cannot load the model {args.model}: {_first_line(error)}", 2)
    main_process = PartialState().is_main_process
    if reward.is_tiny_random and main_process:
        print(f"note: {args.model} is a tiny random checkpoint: its scores are meaningless.", file=sys.stderr)
    try:
        summary = score_folder(reward, args.dir, out, prompt=args.prompt or None, prompts=prompts,
                               decode_workers=args.decode_workers, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("\ninterrupted: the finished rows are kept; run the same command again to resume.", file=sys.stderr)
        return 130
    if not main_process:
        return 0 if summary.rows_scored else 1
    print(f"{summary}; results in {out}", file=sys.stderr)
    for line in summary.errors[:20]:
        print(f"  {line}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  ... and {len(summary.errors) - 20} more (the error column of {out})", file=sys.stderr)
    if summary.rows_scored == 0:
        if summary.scored + summary.failed + summary.skipped == 0:
            return _error(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) found under {args.dir}", 1)
        return _error("no video could be scored", 1)
    return 0


def _organize(args) -> int:
    from .folder import organize

    if not args.dir.is_dir():
        return _error(f"{args.dir} is not a directory", 2)
    try:
        report = organize(args.dir, args.scores, args.out, prefix=args.prefix, dry_run=args.dry_run)
    except (FileNotFoundError, ValueError) as error:
        return _error(_first_line(error), 2)
    except OSError as error:  # a name taken by other content, a copy that does not verify
        return _error(_first_line(error), 1)
    print(("dry run: would have " if args.dry_run else "") + str(report) + f" -> {args.out}")
    if report.missing and not (report.copied or report.already_there):
        return _error(f"none of the videos listed in {args.scores} is under {args.dir}", 2)
    return 0


def _is_network_error(error: BaseException) -> bool:
    # huggingface_hub's HTTP client (httpx, or httpx2 in newer releases) raises a TransportError.
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (ConnectionError, TimeoutError)) or "TransportError" in names


def _upload(args) -> int:
    from .folder import upload

    try:
        url = upload(args.folder, args.repo_id, private=args.private)
    except FileNotFoundError as error:
        return _error(_first_line(error), 2)
    except Exception as error:  # network, auth: one clear line, never the token
        from huggingface_hub import get_token

        reason = f"{type(error).__name__}: {_first_line(error)}"
        if _is_network_error(error):
            reason = f"cannot reach the Hugging Face Hub (no network, or HF_HUB_OFFLINE=1): {reason}"
        message = f"upload to {args.repo_id} failed: {reason}"
        token = get_token()
        return _error(message.replace(token, "***") if token else message, 1)
    print(f"uploaded {args.folder} to {url}")
    return 0


def _app(args) -> int:
    from .app import launch

    launch(args.model, host=args.host, port=args.port, share=args.share, device=args.device, dtype=args.dtype,
           num_frames=args.num_frames, max_upload_mb=args.max_upload_mb)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`); returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = {"score": _score, "organize": _organize, "upload": _upload, "app": _app}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
