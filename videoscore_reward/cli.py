"""The `videoscore-reward` command: score a folder, organise it into a dataset, upload it, serve the app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_MODEL = "TIGER-Lab/VideoScore-v1.1"


def parse_weights(text: str) -> dict[str, float]:
    """`"text-to-video alignment=2,dynamic degree=0.5"` -> {aspect: weight}."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.rpartition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError(f"bad weight {part!r}: expected 'ASPECT=NUMBER', e.g. 'dynamic degree=0.5'.")
    return weights


def _dtype(name: str):
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise argparse.ArgumentTypeError(f"--dtype must be one of {sorted(dtypes)}, got {name!r}.")
    return dtypes[name]


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub id, local folder, or 'tiny-random' (offline, meaningless scores)")
    parser.add_argument("--num-frames", type=int, default=None, help="frames per video (default: the checkpoint's, 16 or 48)")
    parser.add_argument("--device", default=None, help="e.g. cuda, cuda:1, cpu (default: accelerate's device)")
    parser.add_argument("--dtype", type=_dtype, default=None, help="float32, bfloat16 or float16 (default: bf16 on CUDA)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoscore-reward", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score every video of a folder into a CSV or Parquet table")
    score.add_argument("dir", type=Path)
    score.add_argument("--prompt", default="", help="prompt for all videos; empty: from sidecar NAME.txt or the file name")
    score.add_argument("--prompts-csv", type=Path, default=None, help="CSV mapping video_name/file_name to prompt")
    score.add_argument("--out", type=Path, default=None, help="output .csv or .parquet (default DIR/evaluation_results.csv)")
    _add_model_arguments(score)
    score.add_argument("--batch-size", type=int, default=8)
    score.add_argument("--weights", type=parse_weights, default=None, help='e.g. "text-to-video alignment=2,dynamic degree=0.5"')
    score.add_argument("--decode-workers", type=int, default=4)
    score.add_argument("--no-progress", action="store_true")

    organize = commands.add_parser("organize", help="copy a scored folder into a Hugging Face videofolder dataset")
    organize.add_argument("dir", type=Path)
    organize.add_argument("--scores", type=Path, required=True, help="the table written by `score`")
    organize.add_argument("--out", type=Path, required=True)
    organize.add_argument("--prefix", default="", help="text put before every prompt")
    organize.add_argument("--dry-run", action="store_true")

    upload = commands.add_parser("upload", help="upload an organised folder as a Hub dataset repo")
    upload.add_argument("folder", type=Path)
    upload.add_argument("repo_id")
    upload.add_argument("--private", action="store_true")

    app = commands.add_parser("app", help="serve the scoring web app (needs the [app] extra)")
    _add_model_arguments(app)
    app.add_argument("--host", default="127.0.0.1")
    app.add_argument("--port", type=int, default=7860)
    app.add_argument("--share", action="store_true", help="create a public gradio.live link (off by default)")
    app.add_argument("--max-upload-mb", type=int, default=200)
    return parser


def _score(args) -> int:
    from .folder import read_prompts_csv, score_folder
    from .reward import VideoScoreReward

    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    out = args.out or args.dir / "evaluation_results.csv"
    if out.suffix.lower() not in (".csv", ".parquet"):
        print(f"error: --out must end in .csv or .parquet, got {out}", file=sys.stderr)
        return 2
    prompts = read_prompts_csv(args.prompts_csv) if args.prompts_csv else None
    reward = VideoScoreReward.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames,
        weights=args.weights, batch_size=args.batch_size,
    )
    if reward.is_tiny_random:
        print("note: the model is a tiny random checkpoint; its scores are meaningless.", file=sys.stderr)
    summary = score_folder(reward, args.dir, out, prompt=args.prompt or None, prompts=prompts,
                           decode_workers=args.decode_workers, progress=not args.no_progress)
    print(f"{summary}; results in {out}", file=sys.stderr)
    for line in summary.errors[:20]:
        print(f"  failed: {line}", file=sys.stderr)
    if summary.scored == 0 and summary.skipped == 0:
        print("error: no video could be scored", file=sys.stderr)
        return 1
    return 0


def _organize(args) -> int:
    from .dataset import organize

    report = organize(args.dir, args.scores, args.out, prefix=args.prefix, dry_run=args.dry_run)
    print(("dry run: would have " if args.dry_run else "") + str(report) + f" -> {args.out}")
    return 0


def _upload(args) -> int:
    from .dataset import upload

    try:
        url = upload(args.folder, args.repo_id, private=args.private)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # network, auth: one clear line, never the token
        print(f"error: upload to {args.repo_id} failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
              file=sys.stderr)
        return 1
    print(f"uploaded {args.folder} to {url}")
    return 0


def _app(args) -> int:
    from .app import launch

    launch(args.model, host=args.host, port=args.port, share=args.share, device=args.device, dtype=args.dtype,
           num_frames=args.num_frames, max_upload_mb=args.max_upload_mb)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"score": _score, "organize": _organize, "upload": _upload, "app": _app}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
