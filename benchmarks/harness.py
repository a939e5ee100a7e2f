"""The benchmarks' harness: interleaved timing, peak memory, the machine's description, and the
markdown tables they are reported in."""

from __future__ import annotations

import gc
import os
import platform
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import av
import torch
import transformers
from PIL import Image

PROMPT = "a corgi running on the beach at sunset"
"""The prompt of every benchmark video."""


@dataclass
class Table:
    """One section's results: `rows` hold raw values by key, `columns` maps keys to headers."""

    title: str
    columns: dict[str, str]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns.values()) + " |")
            lines.append("|" + "---|" * len(self.columns))
            for row in self.rows:
                lines.append("| " + " | ".join(_format(row.get(key, "")) for key in self.columns) + " |")
            lines.append("")
        lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines).rstrip() + "\n"


def _format(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value == 0 or abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    calls: dict[str, Callable[[], object]],
    *,
    iters: int,
    warmup: int = 1,
    min_seconds: float = 0.0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Median wall-clock seconds per call of each of `calls`, timed in interleaved rounds.

    Each round calls every function once, so a path and its baseline see the same machine load,
    which matters on shared machines more than the number of rounds. After `warmup` untimed rounds,
    rounds go on until there are `iters` of them and they took `min_seconds` (at most 10 * iters).
    CUDA work is synchronized before each clock stops.
    """
    device = torch.device(device)
    for _ in range(warmup):
        for fn in calls.values():
            fn()
        sync(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    began = time.perf_counter()
    while len(times[next(iter(calls))]) < iters or (
        time.perf_counter() - began < min_seconds and len(times[next(iter(calls))]) < 10 * iters
    ):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRSS:
    """Peak resident memory of this process above its level at `start()`, in MiB (Linux only).

    Linux keeps the high-water mark of the resident set (VmHWM); writing 5 to /proc/self/clear_refs
    resets it to the current RSS. This sees every allocation (torch, numpy, PIL), unlike tracemalloc,
    which sees only Python's allocator. Freed memory that the C allocator keeps for reuse is not
    counted twice, so a measurement is most meaningful in a fresh process.
    """

    def start(self) -> None:
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            self._base = _proc_status_kib("VmRSS")
        except OSError:
            self._base = None

    def peak_mib(self) -> float:
        peak = _proc_status_kib("VmHWM")
        if self._base is None or peak is None:
            return float("nan")
        return (peak - self._base) / 1024


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = _proc_meminfo_gib()
    info = {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}",
        "memory": f"{memory:.0f} GiB" if memory else "unknown",
        "GPU": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        "software": (
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, PyAV {av.__version__}, "
            f"Pillow {Image.__version__}, {platform.system()} {platform.release()}"
        ),
    }
    return info


def _proc_meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            return int(meminfo.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None


def load_average() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"




def append_results(path: str | os.PathLike, tables: list[Table], *, started: datetime, elapsed: float, load_before: str, argv: Sequence[str]) -> None:
    """Append one run (date, machine, command, tables) to the markdown file at `path`."""
    path = Path(path)
    info = machine()
    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{shlex.join(['python', 'benchmarks/run.py', *argv])}`",
        *(f"- {key}: {value}" for key, value in info.items()),
        f"- Load average (1, 5, 15 min) before: {load_before}; after: {load_average()}; total time {elapsed / 60:.1f} min",
        "",
    ]
    text = "\n".join(lines) + "\n" + "\n".join(table.markdown() for table in tables)
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `python benchmarks/run.py --results benchmarks/RESULTS.md`.\n\n")
    with path.open("a") as results:
        results.write(text + "\n")


