"""Smoke test of the benchmarks' `serving` section against the session's server: it runs, both paths agree."""

import pytest

from benchmarks.sections.serving import bench_serving


def test_serving_benchmark_runs_and_both_paths_agree(server, token, tiny_reward):
    table = bench_serving(server, tiny_reward, token=token, clients=(3,), requests=3, rounds=1, frames=4, size=32)
    (row,) = table.rows
    assert row["clients"] == 3 and row["server"] > 0 and row["local"] > 0
    assert row["ratio"] == pytest.approx(row["server"] / row["local"])
    assert 0 < row["server_p50"] <= row["server_p99"]
    sizes = dict(item.split("x") for item in row["batches"].split(", "))
    assert sum(int(size) * int(count) for size, count in sizes.items()) == 3  # every request scored once
    assert float(table.notes[0].rsplit(": ", 1)[1].rstrip(".")) <= 1e-5  # the largest score difference
