"""Smoke test of benchmarks/run.py: every benchmark function once, on its smallest size, one call.

Speed is not checked here (that is what the benchmarks are for); what is checked is that the code
runs, that each benchmark's two paths compute the same thing, and that the FLOPs formula behind the
GPU section's MFU equals torch's own count.
"""

import importlib.util
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

RUN_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("videoscore_benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_preprocess_paths_agree(run, tiny_reward):
    table = run.bench_preprocess(tiny_reward, frame_counts=(16,), sizes=(256,), videos=1, iters=1, warmup=0, min_seconds=0)
    (row,) = table.rows
    assert (row["frames"], row["size"], row["model_px"]) == (16, 256, 378)
    assert positive(row["ours"]) and positive(row["reference"])
    assert row["speedup"] == pytest.approx(row["ours"] / row["reference"])
    # 256 px is upscaled, with Pillow's arithmetic on both paths: the pixels are the same.
    assert row["diff"] == 0


def test_e2e_paths_agree(run, tiny_checkpoint_dir):
    table = run.bench_e2e(tiny_checkpoint_dir, batches=(1,), iters=1, warmup=0, isolate=False)
    (row,) = table.rows
    assert row["batch"] == 1 and positive(row["ours"]) and positive(row["reference"])
    assert row["diff"] <= 0.05
    assert row["ours_mib"] >= 0 and row["reference_mib"] >= 0


def test_decode_paths_return_the_same_frames(run, tmp_path):
    table = run.bench_decode(tmp_path, durations=(2,), fps=24, frame_counts=(16,), iters=1, warmup=0, min_seconds=0)
    (row,) = table.rows
    assert row["video"] == "2 s (48 frames)" and row["frames"] == 16
    assert row["same"] is True
    assert positive(row["ours"]) and positive(row["every"]) and positive(row["original"])
    video = run.load_video(tmp_path / "2s.mp4")
    assert tuple(video.shape) == (48, 3, 256, 256)


def test_flops_formula_equals_torch_flop_counter(run):
    check = run.check_flops_formula(frames=3, batch=1, text_tokens=17)
    assert check["counted"] > 0
    assert check["formula"] == check["counted"]


def test_flops_formula_full_size_by_hand(run):
    """The text term for the real sizes, worked out independently of the formula's code."""
    config = run.videoscore_config()
    flops = run.flops_per_video(config, frames=16, text_tokens=300)
    tokens = 300 + 64 * 16
    per_layer = 2 * tokens * (4096 * 4096 * 2 + 4096 * 1024 * 2 + 3 * 4096 * 14336) + 4 * tokens**2 * 4096
    assert flops["text"] == 32 * per_layer + 2 * 4096 * 5
    assert run.image_patches(config, 256) == 27 * 27  # upscaled to 378 px
    assert run.image_patches(config, 1024) == 70 * 70  # capped at 980 px


def test_gpu_section_code_path_on_cpu(run):
    tables = run.bench_model(
        sizes=run.SCALED_DOWN_SIZES, device="cpu", dtype=torch.float32, frame_counts=(1,), batches=(1,),
        iters=1, warmup=1, text_tokens=20, optimize_batch=1, compile=False,
    )
    throughput, optimizations = tables
    (row,) = throughput.rows
    assert positive(row["videos_per_s"]) and row["vs_batch1"] == 1.0
    assert math.isnan(row["mfu"])  # no peak rate for a CPU
    variants = {r["variant"]: r for r in optimizations.rows}
    assert positive(variants["eager attention"]["videos_per_s"])
    assert variants["SDPA (baseline)"]["speedup"] == 1.0


def test_peak_rate_lookup(run):
    assert run.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert run.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert run.peak_bf16_tflops("NVIDIA H200") == 989.4
    assert run.peak_bf16_tflops("Some Other GPU") is None


def test_results_file_gets_date_machine_and_tables(run, tmp_path):
    table = run.Table("A section", {"a": "column A", "b": "column B"}, [{"a": 1.23456, "b": True}], ["a note"])
    path = tmp_path / "RESULTS.md"
    started = datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)
    for _ in range(2):
        run.append_results(path, [table], started=started, elapsed=61, load_before="1.00 1.00 1.00", argv=["decode"])
    text = path.read_text()
    assert text.startswith("# Benchmark results")
    assert text.count("## 2030-01-02 03:04 UTC") == 2  # runs are appended, not overwritten
    assert "- Command: `python benchmarks/run.py decode`" in text
    assert "- CPU: " in text and "- GPU: " in text
    assert "| column A | column B |\n|---|---|\n| 1.23 | yes |" in text
    assert "- a note" in text


def test_unknown_section_is_an_error(run, capsys):
    with pytest.raises(SystemExit):
        run.main(["preproces"])
    assert "unknown section(s) preproces" in capsys.readouterr().err
