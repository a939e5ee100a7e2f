"""The command line of `python benchmarks/run.py`: which sections to run, and where to record them."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from videoscore_reward import VideoScoreReward
from videoscore_reward.testing import tiny_checkpoint

from .harness import Table, append_results, load_average, machine
from .sections.decode import bench_decode
from .sections.e2e import bench_e2e
from .sections.gpu import bench_gpu
from .sections.preprocess import bench_preprocess
from .sections.videoscore2 import bench_videoscore2

SECTIONS = ("preprocess", "e2e", "decode", "gpu", "serving", "videoscore2")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="How fast videoscore-reward is against the reference way of running VideoScore.", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per measurement (the median is reported)")
    parser.add_argument("--results", metavar="FILE", help="append the tables, with date and machine, to this markdown file")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's peak bf16 TFLOP/s for MFU (default: looked up by name)")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile and CUDA graphs out of the GPU section")
    args = parser.parse_args(argv)
    unknown = [section for section in args.sections if section not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}.")
    args.sections = args.sections or list(SECTIONS)
    argv = list(sys.argv[1:] if argv is None else argv)

    transformers.utils.logging.disable_progress_bar()
    started, load_before, clock = datetime.now(timezone.utc), load_average(), time.perf_counter()
    print(f"videoscore-reward benchmarks, {started:%Y-%m-%d %H:%M} UTC")
    for key, value in machine().items():
        print(f"  {key}: {value}")
    print(f"  load average: {load_before}\n", flush=True)

    tables: list[Table] = []

    def report(new: list[Table]) -> None:
        for table in new:
            print(table.markdown(), flush=True)
        tables.extend(new)

    with tempfile.TemporaryDirectory(prefix="videoscore-bench-") as tmp:
        checkpoint = tiny_checkpoint(Path(tmp) / "tiny")
        if "preprocess" in args.sections:
            devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
            for device in devices:
                reward = VideoScoreReward.from_pretrained(checkpoint, device=device, dtype=torch.float32)
                report([bench_preprocess(reward, iters=args.iters)])
        if "e2e" in args.sections:
            report([bench_e2e(checkpoint, iters=args.iters)])
        if "decode" in args.sections:
            report([bench_decode(tmp, iters=args.iters)])
        if "gpu" in args.sections:
            report(bench_gpu(iters=args.iters, peak_tflops=args.peak_tflops, compile=not args.no_compile))
        if "videoscore2" in args.sections:
            from videoscore_reward.testing.videoscore2 import tiny_videoscore2_checkpoint

            report([bench_videoscore2(tiny_videoscore2_checkpoint(Path(tmp) / "tiny-videoscore2"), iters=args.iters)])
        if "serving" in args.sections:
            from .sections.serving import serving_section  # imports Ray: only when asked for

            report(serving_section(checkpoint))

    elapsed = time.perf_counter() - clock
    print(f"Done in {elapsed / 60:.1f} min.")
    if args.results:
        append_results(args.results, tables, started=started, elapsed=elapsed, load_before=load_before, argv=argv)
        print(f"Appended to {args.results}.")
    return 0
