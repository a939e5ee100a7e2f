"""The `videoscore-reward` command: score a folder, organise it into a dataset, upload it, serve the app,
and check the reward (evaluate against human labels, compare two runs, stability under transformations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_checks import OneLineParser, check_listen, check_results_out, port_number, positive_float

DEFAULT_MODEL = "TIGER-Lab/VideoScore-v1.1"


def weights_argument(text: str) -> dict[str, float]:
    """The argparse type of `--weights`: `"text-to-video alignment=2,dynamic degree=0.5"` -> {aspect:
    weight}, checked by the reward core's `parse_weights` against the aspects of every model family
    (an `ArgumentTypeError` says what is wrong); the loaded model then checks its own."""
    from .reward.aspects import parse_weights as check
    from .reward.checkpoints import FAMILIES

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
    parser = OneLineParser(prog="videoscore-reward", description=__doc__)
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


def _error(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _no_loading_bars() -> None:
    """--no-progress: the bars of model loading too, not only ours."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bars()
    disable_progress_bar()


def _load_reward(args, **kwargs):
    """The model of --model, --device, --dtype and --num-frames; OSError or ValueError if it cannot load."""
    from .reward import VideoScoreReward

    if getattr(args, "mode", None):
        kwargs["mode"] = args.mode
    try:
        return VideoScoreReward.from_pretrained(args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames, **kwargs)
    except TypeError as error:  # --mode for a model without modes
        raise ValueError(str(error)) from None


def _score(args) -> int:
    from accelerate import PartialState

    from .folder import VIDEO_EXTENSIONS, find_videos, read_prompts_csv, score_folder
    from .folder.find import prompts_coverage

    if not args.dir.is_dir():
        return _error(f"{args.dir} is not a directory", 2)
    out = args.out or args.dir / "evaluation_results.csv"
    try:
        check_results_out(out, args.prompts_csv)
        names = [p.relative_to(args.dir).as_posix() for p in find_videos(args.dir)]
    except (OSError, ValueError) as error:
        return _error(_first_line(error), 2)
    try:
        prompts = read_prompts_csv(args.prompts_csv) if args.prompts_csv else None
    except (OSError, ValueError) as error:
        return _error(f"--prompts-csv: {_first_line(error)}", 2)
    missing, extra = prompts_coverage(names, prompts) if prompts else ([], [])
    if missing:
        print(f"warning: --prompts-csv has no row for {len(missing)} video(s), e.g. {missing[0]!r}: "
              "they get their sidecar .txt or file-name prompt", file=sys.stderr)
    if extra:
        print(f"warning: --prompts-csv names {len(extra)} video(s) not under {args.dir}, e.g. {extra[0]!r}: ignored", file=sys.stderr)
    if args.no_progress:
        _no_loading_bars()
    try:
        reward = _load_reward(args, weights=args.weights, batch_size=args.batch_size)
    except (OSError, ValueError) as error:
        return _error(f"cannot load the model {args.model}: {_first_line(error)}", 2)
    main_process = PartialState().is_main_process
    if reward.is_tiny_random and main_process:
        print(f"note: {args.model} is a tiny random checkpoint: its scores are meaningless.", file=sys.stderr)
    from .folder.table import check_results_table

    try:  # a table to resume must have this model's aspect columns, not another family's
        check_results_table(out, reward.aspects)
    except ValueError as error:
        return _error(f"--out: {_first_line(error)}", 2)
    try:
        summary = score_folder(reward, args.dir, out, prompt=args.prompt or None, prompts=prompts,
                               decode_workers=args.decode_workers, progress=not args.no_progress)
    except KeyboardInterrupt:
        print("\ninterrupted: the finished rows are kept; run the same command again to resume.", file=sys.stderr)
        return 130
    if not main_process:
        return 0 if summary.rows_scored else 1
    if summary.scored + summary.failed + summary.skipped == 0:  # no table was written
        return _error(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) found under {args.dir}", 1)
    print(f"{summary}; results in {out}", file=sys.stderr)
    for line in summary.errors[:20]:
        print(f"  {line}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  ... and {len(summary.errors) - 20} more (the error column of {out})", file=sys.stderr)
    if summary.rows_scored == 0:
        return _error("no video could be scored", 1)
    return 0


def _missing_extra(extra: str, feature: str) -> int | None:
    """Exit code 2, after one line saying what to install, when `extra` is missing; else None."""
    from .extras import MissingExtraError, require

    try:
        require(extra, feature)
    except MissingExtraError as error:
        return _error(str(error), 2)
    return None


def _evaluate(args) -> int:
    if (code := _missing_extra("eval", "videoscore-reward evaluate")) is not None:
        return code
    from .evaluation import TableError, evaluate

    try:
        result = evaluate(args.scores, args.labels, pair_score=args.pair_score, tie_margin=args.tie_margin,
                          n_resamples=args.resamples, seed=args.seed)
    except (TableError, ValueError) as error:
        return _error(_first_line(error), 2)
    files = result.write(args.out)
    print(result.summary_markdown())
    print(f"wrote {len(files)} files to {args.out}", file=sys.stderr)
    return 0


def _compare(args) -> int:
    if (code := _missing_extra("eval", "videoscore-reward compare")) is not None:
        return code
    from .evaluation import TableError, compare

    try:
        result = compare(args.run_a, args.run_b, weights=args.weights, alpha=args.alpha, top=args.top,
                         n_resamples=args.resamples, seed=args.seed)
    except (TableError, ValueError) as error:
        return _error(_first_line(error), 2)
    files = result.write(args.out)
    for name, shift in result.shifts.items():
        low, high = shift.ci95
        interval = "" if low is None else f" [{low:+.3f}, {high:+.3f}]"
        p_value = "" if shift.p_value is None else f", p = {shift.p_value:.2g}"
        print(f"{name}: {shift.diff:+.3f}{interval}{p_value}")
    for flag in result.flags:
        print(f"REWARD HACKING? {flag}")
    print(f"report: {args.out / 'report.html'} ({len(files)} files)", file=sys.stderr)
    return 3 if result.flags and args.fail_on_hacking else 0


def _stability(args) -> int:
    if (code := _missing_extra("eval", "videoscore-reward stability")) is not None:
        return code
    from .evaluation.stability import get_transforms, stability
    from .folder import read_prompts_csv

    if not args.dir.is_dir():
        return _error(f"{args.dir} is not a directory", 2)
    try:
        get_transforms(args.transforms)
    except ValueError as error:
        return _error(f"--transforms: {_first_line(error)}", 2)
    try:
        prompts = read_prompts_csv(args.prompts_csv) if args.prompts_csv else None
    except (OSError, ValueError) as error:
        return _error(f"--prompts-csv: {_first_line(error)}", 2)
    if args.no_progress:
        _no_loading_bars()
    try:
        reward = _load_reward(args, batch_size=args.batch_size)
    except (OSError, ValueError) as error:
        return _error(f"cannot load the model {args.model}: {_first_line(error)}", 2)
    if reward.is_tiny_random:
        print(f"note: {args.model} is a tiny random checkpoint: its scores are meaningless.", file=sys.stderr)
    result = stability(reward, args.dir, transforms=args.transforms, prompt=args.prompt or None, prompts=prompts,
                       workers=args.workers, progress=not args.no_progress)
    if result.rows.empty:
        return _error(f"no videos found under {args.dir}", 1)
    out = args.out or args.dir / "stability"
    result.write(out)
    print(result.markdown())
    errors = result.rows["error"]
    failed = result.rows[(errors != "") & ~errors.str.startswith("skipped")]
    for _, row in failed.drop_duplicates("video_name").head(20).iterrows():
        print(f"  failed: {row['video_name']} ({row['transform']}): {row['error']}", file=sys.stderr)
    print(f"table, report and plot in {out}", file=sys.stderr)
    return 0 if (result.rows["error"] == "").any() else _error("no video could be scored", 1)


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
    if (code := _missing_extra("app", "The web app")) is not None:
        return code
    from .app import launch

    try:
        check_listen(args.host, args.port)
        launch(args.model, host=args.host, port=args.port, share=args.share, device=args.device, dtype=args.dtype,
               num_frames=args.num_frames, max_upload_mb=args.max_upload_mb)
    except (OSError, ValueError) as error:  # a model that cannot load (offline: it names tiny-random), a port in use
        return _error(_first_line(error), 2)
    return 0


def _serve(args) -> int:
    import os

    if (code := _missing_extra("serve", "The reward server")) is not None:
        return code
    from .serve.deployment import ServerSettings, check_binding, run_server

    token = args.token or os.environ.get("VIDEOSCORE_REWARD_TOKEN") or None
    try:
        check_binding(args.host, token)
    except ValueError as error:
        return _error(str(error), 2)
    settings = ServerSettings(
        model=args.model, dtype=str(args.dtype).removeprefix("torch.") if args.dtype else None,
        num_frames=args.num_frames, weights=args.weights, normalize=args.normalize, batch_size=args.batch_size,
        device=args.device, max_batch_size=args.max_batch_size, batch_wait_s=args.batch_wait_ms / 1000,
        max_request_bytes=int(args.max_request_mb * 2**20), token=token,
    )
    print(f"serving {args.model} at http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    try:
        run_server(settings, host=args.host, port=args.port, num_replicas=args.num_replicas,
                   gpus_per_replica=args.gpus_per_replica, cpus_per_replica=args.cpus_per_replica, address=args.address)
    except RuntimeError as error:  # Ray Serve's "Deploying application ... failed", with the replica's cause
        return _error(f"the server did not start: {_first_line(error)}", 1)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`); returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = {
        "score": _score, "organize": _organize, "upload": _upload, "app": _app,
        "evaluate": _evaluate, "compare": _compare, "stability": _stability, "serve": _serve,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
