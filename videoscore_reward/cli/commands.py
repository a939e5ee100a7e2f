"""What each subcommand does, once its arguments are parsed: every handler returns the exit code and
reports a failure as one line ("error: ...") instead of a traceback."""

from __future__ import annotations

import sys

from .checks import check_listen, check_results_out

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
    from ..reward import VideoScoreReward

    if getattr(args, "mode", None):
        kwargs["mode"] = args.mode
    try:
        return VideoScoreReward.from_pretrained(args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames, **kwargs)
    except TypeError as error:  # --mode for a model without modes
        raise ValueError(str(error)) from None


def _score(args) -> int:
    from accelerate import PartialState

    from ..folder import VIDEO_EXTENSIONS, find_videos, read_prompts_csv, score_folder
    from ..folder.find import prompts_coverage

    if not args.dir.is_dir():
        return _error(f"{args.dir} is not a directory", 2)
    out = args.out or args.dir / "evaluation_results.csv"
    try:
        check_results_out(out, args.prompts_csv)
        names = [p.relative_to(args.dir).as_posix() for p in find_videos(args.dir)]
    except (OSError, ValueError) as error:
        return _error(_first_line(error), 2)
    if not names:  # said before a model of several GB loads for nothing
        return _error(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) found under {args.dir}", 1)
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
    from ..folder.table import check_results_table

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
    from ..extras import MissingExtraError, require

    try:
        require(extra, feature)
    except MissingExtraError as error:
        return _error(str(error), 2)
    return None


def _evaluate(args) -> int:
    if (code := _missing_extra("eval", "videoscore-reward evaluate")) is not None:
        return code
    from ..evaluation import TableError, evaluate

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
    from ..evaluation import TableError, compare

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
    from ..evaluation.stability import get_transforms, stability
    from ..folder import read_prompts_csv

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
    from ..folder import organize

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
    from ..folder import upload

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
    from ..app import launch

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
    from ..serve.deployment import ServerSettings, check_binding, run_server

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


HANDLERS = {
    "score": _score, "organize": _organize, "upload": _upload, "app": _app,
    "evaluate": _evaluate, "compare": _compare, "stability": _stability, "serve": _serve,
}
"""Subcommand name -> handler(args) -> exit code."""
