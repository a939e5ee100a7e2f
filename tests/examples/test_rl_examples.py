"""The RL examples run end to end offline as documented: `python examples/NAME.py --tiny`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["grpo_wan", "ddpo_animatediff"])
def test_tiny_run(name, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--tiny", "--project_dir", str(tmp_path)],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 1:" in result.stdout
    assert (tmp_path / "final" / "pytorch_lora_weights.safetensors").is_file()
    assert (tmp_path / "checkpoint-2" / "lora_training_state.safetensors").is_file()
    assert (tmp_path / "eval" / "epoch-1.mp4").is_file()
