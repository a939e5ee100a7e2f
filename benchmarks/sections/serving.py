"""Section `serving`: the reward server with concurrent clients, against in-process calls in the same run
(`python benchmarks/run.py serving`; needs the [serve] extra).

A local Ray cluster runs one replica of the server (`run_server`, what `videoscore-reward serve`
calls) with the tiny checkpoint on CPU, with as many CPUs as torch has threads here, so the replica and
the in-process reward compute with the same threads. Each of C client threads sends one video per
request (16 frames, 256x256, uint8) until a fixed number of requests is done, through `RemoteReward`;
then C threads call an in-process `VideoScoreReward` the same way. Reported: videos/s of both and their
ratio, p50 and p99 request latency, and the batch sizes the server formed (from its /health counts). A
score from each path is compared, so that the two paths are known to compute the same thing.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from videoscore_reward import RemoteReward, VideoScoreReward
from videoscore_reward.testing import make_frames

from ..harness import PROMPT, Table


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_clients(call: Callable[[torch.Tensor], object], videos: Sequence[torch.Tensor], clients: int) -> tuple[float, list[float]]:
    """`clients` threads share the work of calling `call(video)` once per video; returns the wall-clock
    seconds of the whole run and each call's latency in seconds."""
    pending = list(range(len(videos)))
    lock, latencies, errors = threading.Lock(), [], []
    start = threading.Barrier(clients + 1)

    def client() -> None:
        start.wait()
        while True:
            with lock:
                if not pending:
                    return
                index = pending.pop()
            began = time.perf_counter()
            try:
                call(videos[index])
            except Exception as error:  # reported after the run, not swallowed
                errors.append(error)
                return
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(videos)} calls failed with {clients} clients: {errors[0]!r}")
    return elapsed, latencies


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _batch_sizes(url: str, token: str | None = None) -> Counter:
    request = urllib.request.Request(f"{url}/health", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return Counter({int(k): v for k, v in json.loads(response.read())["batch_sizes"].items()})


def bench_serving(url: str, local: VideoScoreReward, *, token: str | None = None, clients: Sequence[int] = (1, 4, 16),
                  requests: int = 32, rounds: int = 2, frames: int = 16, size: int = 256) -> Table:
    """The serving table against the server at `url` and the in-process reward `local` (same checkpoint):
    one row per number of concurrent clients. Each measurement runs `rounds` times, server and in-process
    alternating so that both see the same machine load; the median videos/s and the latencies of all
    rounds are reported."""
    table = Table(
        f"Reward server vs in-process, {requests} requests of 1 video ({frames} frames, {size}x{size} px, uint8)",
        {"clients": "clients", "server": "server (videos/s)", "local": "in-process (videos/s)",
         "ratio": "server / in-process", "server_p50": "server p50 ms", "server_p99": "server p99 ms",
         "local_p50": "in-process p50 ms", "local_p99": "in-process p99 ms", "batches": "batches formed (size x count)"},
    )
    videos = [make_frames(frames, size, size, seed=i) for i in range(requests)]
    remote = RemoteReward(url, token=token)
    # Both paths on the same videos (and a warm-up of each).
    diff = (remote(videos[:2], PROMPT).scores - local(videos[:2], PROMPT).scores).abs().max().item()
    for count in clients:
        before = _batch_sizes(url, token)
        speeds: dict[str, list[float]] = {"server": [], "local": []}
        latencies: dict[str, list[float]] = {"server": [], "local": []}
        for _ in range(rounds):
            for name, call in (("server", lambda video: remote([video], PROMPT)),
                               ("local", lambda video: local([video], PROMPT))):
                elapsed, times = run_clients(call, videos, count)
                speeds[name].append(requests / elapsed)
                latencies[name].extend(times)
        formed = _batch_sizes(url, token) - before
        server, local_speed = statistics.median(speeds["server"]), statistics.median(speeds["local"])
        table.rows.append({
            "clients": count, "server": server, "local": local_speed, "ratio": server / local_speed,
            **{f"{name}_p{q}": 1000 * _percentile(latencies[name], q) for name in ("server", "local") for q in (50, 99)},
            "batches": ", ".join(f"{size}x{n}" for size, n in sorted(formed.items())),
        })
    table.notes.append(f"Largest score difference between the server and in-process on the same videos: {diff:.2g}.")
    table.notes.append(f"Server: max batch {remote.max_batch_size} videos; in-process: C threads calling one "
                       "VideoScoreReward directly. Latency: one request, from the client's call to its answer "
                       f"(encoding and HTTP included); {rounds} rounds per row, server and in-process alternating.")
    return table


def serving_section(checkpoint: str | Path, *, replica_cpus: Sequence[int] | None = None, max_batch_size: int = 16,
                    batch_wait_ms: float = 10.0, **kwargs) -> list[Table]:
    """One table per replica size: a local Ray cluster with one server replica of `cpus` CPUs (torch in the
    replica uses that many threads) and the tiny checkpoint on CPU, `bench_serving`, shut down. Default: 1 CPU
    (the `serve` command's default) and as many as torch has threads here (what the in-process path uses)."""
    import ray
    from ray import serve

    from videoscore_reward.serve.deployment import ServerSettings, run_server

    threads = torch.get_num_threads()
    local = VideoScoreReward.from_pretrained(checkpoint, device="cpu")
    tables = []
    for cpus in replica_cpus or sorted({1, threads}):
        ray.init(num_cpus=max(cpus, threads), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        try:
            port = _free_port()
            settings = ServerSettings(model=str(checkpoint), device="cpu", max_batch_size=max_batch_size,
                                      batch_wait_s=batch_wait_ms / 1000)
            run_server(settings, host="127.0.0.1", port=port, gpus_per_replica=0, cpus_per_replica=cpus, blocking=False)
            table = bench_serving(f"http://127.0.0.1:{port}", local, **kwargs)
        finally:
            serve.shutdown()
            ray.shutdown()
        table.title += (f"; Ray Serve, 1 replica of {cpus} CPU(s), batch wait {batch_wait_ms:g} ms; "
                        f"in-process torch threads {threads}")
        tables.append(table)
    return tables
