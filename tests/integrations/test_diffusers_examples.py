"""The diffusers examples run end to end offline with `--tiny`, as CI and a newcomer run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from videoscore_reward.reward.video import load_video

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["wan_best_of_n.py", "animatediff_best_of_n.py"])
def test_example_runs_with_tiny(name, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(EXAMPLES.parent)}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "--tiny"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best seed" in done.stdout and "wrote best.mp4" in done.stdout
    size = 32 if "animatediff" in name else 16
    assert load_video(tmp_path / "best.mp4").shape[1:] == (3, size, size)
    if name == "wan_best_of_n.py":  # the winner regenerated alone, scored along the way
        assert done.stdout.count("clean estimate") == 3 and "final video" in done.stdout
        difference = float(done.stdout.split("max pixel difference to the best-of-n winner ")[1].split()[0])
        assert difference < 1e-5
