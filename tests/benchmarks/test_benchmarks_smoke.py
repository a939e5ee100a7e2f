"""Smoke test of benchmarks/run.py: every benchmark function once, on its smallest size, one call.

Speed is not checked here (that is what the benchmarks are for); what is checked is that the code
runs, that each benchmark's two paths compute the same thing, and that the FLOPs formula behind the
GPU section's MFU equals torch's own count.
"""

import math
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

from benchmarks import flops as flops_model
from benchmarks.cli import main
from benchmarks.harness import Table, append_results
from benchmarks.sections.decode import bench_decode
from benchmarks.sections.e2e import bench_e2e
from benchmarks.sections.gpu import bench_model
from benchmarks.sections.preprocess import bench_preprocess
from videoscore_reward import load_video

RUN_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_preprocess_paths_agree(tiny_reward):
    table = bench_preprocess(tiny_reward, frame_counts=(16,), sizes=(256,), videos=1, iters=1, warmup=0, min_seconds=0)
    (row,) = table.rows
    assert (row["frames"], row["size"], row["model_px"]) == (16, 256, 378)
    assert positive(row["ours"]) and positive(row["reference"])
    assert row["speedup"] == pytest.approx(row["ours"] / row["reference"])
    # 256 px is upscaled, with Pillow's arithmetic on both paths: the pixels are the same.
    assert row["diff"] == 0


def test_e2e_paths_agree(tiny_checkpoint_dir):
    table = bench_e2e(tiny_checkpoint_dir, batches=(1,), iters=1, warmup=0, isolate=False)
    (row,) = table.rows
    assert row["batch"] == 1 and positive(row["ours"]) and positive(row["reference"])
    assert row["diff"] <= 1e-4  # the README's bound for the library against the original path
    assert row["ours_mib"] >= 0 and row["reference_mib"] >= 0


def test_decode_paths_return_the_same_frames(tmp_path):
    table = bench_decode(tmp_path, durations=(2,), fps=24, frame_counts=(16,), iters=1, warmup=0, min_seconds=0)
    (row,) = table.rows
    assert row["video"] == "2 s (48 frames)" and row["frames"] == 16
    assert row["same"] is True
    assert positive(row["ours"]) and positive(row["every"]) and positive(row["original"])
    video = load_video(tmp_path / "2s.mp4")
    assert tuple(video.shape) == (48, 3, 256, 256)


def test_flops_formula_equals_torch_flop_counter():
    check = flops_model.check_flops_formula(frames=3, batch=1, text_tokens=17)
    assert check["counted"] > 0
    assert check["formula"] == check["counted"]


def test_flops_formula_full_size_by_hand():
    """The text term for the real sizes, worked out independently of the formula's code."""
    config = flops_model.videoscore_config()
    flops = flops_model.flops_per_video(config, frames=16, text_tokens=300)
    tokens = 300 + 64 * 16
    per_layer = 2 * tokens * (4096 * 4096 * 2 + 4096 * 1024 * 2 + 3 * 4096 * 14336) + 4 * tokens**2 * 4096
    assert flops["text"] == 32 * per_layer + 2 * 4096 * 5
    assert flops_model.image_patches(config, 256) == 27 * 27  # upscaled to 378 px
    assert flops_model.image_patches(config, 1024) == 70 * 70  # capped at 980 px


def test_gpu_section_code_path_on_cpu():
    tables = bench_model(
        sizes=flops_model.SCALED_DOWN_SIZES, device="cpu", dtype=torch.float32, frame_counts=(1,), batches=(1,),
        iters=1, warmup=1, text_tokens=20, optimize_batch=1, compile=False,
    )
    throughput, optimizations = tables
    (row,) = throughput.rows
    assert positive(row["videos_per_s"]) and row["vs_batch1"] == 1.0
    assert math.isnan(row["mfu"])  # no peak rate for a CPU
    variants = {r["variant"]: r for r in optimizations.rows}
    assert positive(variants["eager attention"]["videos_per_s"])
    assert variants["SDPA (baseline)"]["speedup"] == 1.0


def test_peak_rate_lookup():
    assert flops_model.peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert flops_model.peak_bf16_tflops("NVIDIA H100 PCIe") == 756.0
    assert flops_model.peak_bf16_tflops("NVIDIA H200") == 989.4
    assert flops_model.peak_bf16_tflops("Some Other GPU") is None


def test_results_file_gets_date_machine_and_tables(tmp_path):
    table = Table("A section", {"a": "column A", "b": "column B"}, [{"a": 1.23456, "b": True}], ["a note"])
    path = tmp_path / "RESULTS.md"
    started = datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)
    for _ in range(2):
        append_results(path, [table], started=started, elapsed=61, load_before="1.00 1.00 1.00", argv=["decode"])
    text = path.read_text()
    assert text.startswith("# Benchmark results")
    assert text.count("## 2030-01-02 03:04 UTC") == 2  # runs are appended, not overwritten
    assert "- Command: `python benchmarks/run.py decode`" in text
    assert "- CPU: " in text and "- GPU: " in text
    assert "| column A | column B |\n|---|---|\n| 1.23 | yes |" in text
    assert "- a note" in text


def test_unknown_section_is_an_error(capsys):
    with pytest.raises(SystemExit, match="2"):
        main(["preproces"])
    assert "unknown section(s) preproces" in capsys.readouterr().err


def test_run_py_works_as_a_script_from_anywhere(tmp_path):
    result = subprocess.run([sys.executable, str(RUN_PY), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "preprocess, e2e, decode, gpu" in result.stdout


def test_videoscore2_forced_and_official_run(tmp_path):
    from benchmarks.sections.videoscore2 import bench_videoscore2
    from videoscore_reward.testing.videoscore2 import tiny_videoscore2_checkpoint

    table = bench_videoscore2(tiny_videoscore2_checkpoint(tmp_path / "vs2"), seconds=(2.0,), size=56, batch=2,
                              max_new_tokens=3, iters=1, warmup=0)
    (row,) = table.rows
    assert row["frames"] == 4 and row["tokens"] == 2 * 12 * 12 * 4 // 4  # 56 px -> 336 px (min_pixels)
    assert positive(row["forced"]) and positive(row["official"]) and 1 <= row["new_tokens"] <= 3
    assert row["speedup"] == pytest.approx(row["official"] / row["forced"])
