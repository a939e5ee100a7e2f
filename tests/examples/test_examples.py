"""Every examples/*.py runs end to end with `--tiny` (tiny pipeline, tiny reward, CPU, offline), as
`python examples/NAME.py --tiny`, so none can rot; a new example is picked up by its file name.

An example whose own test (a file under tests/ naming it and `--tiny`) runs it with more checks is
left to that test, so CI runs each example once.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# "Under a minute" on a free CPU; the margin is for CI machines shared with other jobs.
TIMEOUT_S = 240


def _own_test(example: Path) -> Path | None:
    """The test file, other than this one, that runs `example` with --tiny (None if none)."""
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        text = test.read_text()
        if test != Path(__file__).resolve() and "--tiny" in text and f'"{example.stem}' in text:
            return test
    return None


def test_every_example_is_run_with_tiny():
    assert EXAMPLES, f"no examples/*.py under {ROOT}"
    for example in EXAMPLES:
        assert "--tiny" in example.read_text(), f"examples/{example.name} has no --tiny flag"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_with_tiny(script, tmp_path):
    own = _own_test(script)
    if own is not None:
        pytest.skip(f"run with --tiny by {own.relative_to(ROOT)}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    try:  # in a scratch folder: whatever the example writes stays out of the repository
        result = subprocess.run([sys.executable, str(script), "--tiny"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"python examples/{script.name} --tiny ran past {TIMEOUT_S} s:\n{error.stdout or ''}\n{error.stderr or ''}"[-6000:])
    assert result.returncode == 0, (
        f"python examples/{script.name} --tiny exited with {result.returncode}:\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
