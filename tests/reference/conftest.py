"""Environments that run an original implementation next to ours, built once and kept between runs.

Each is a venv of its own (no system site-packages: a venv's base interpreter lacks the test
environment's packages) under ~/.cache/videoscore-reward, with every package it needs installed
explicitly. Building one needs the package index; `pytest -m "not reference"` skips these tests.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from importlib.metadata import version
from pathlib import Path

import pytest

# The numerical stack is the test environment's own (same releases), so both sides compute alike.
SHARED_STACK = [f"{name}=={version(name).split('+')[0]}" for name in ("torch", "av", "numpy", "pillow")]


def reference_python(name: str, requirements: list[str], *, no_deps: list[str] = (), imports: list[str]) -> Path:
    """The Python of the environment `name`, built with `requirements` (with their dependencies) and
    `no_deps` (without), and checked by running `imports` (statements) in it.

    Rebuilt when the list of packages changed or the check fails; stamped complete only after the
    check passes. Fails the test with pip's or Python's message when it cannot be built.
    """
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videoscore-reward" / f"{name}-venv"
    python = folder / "bin" / "python"
    stamp = folder / "complete.txt"
    wanted = "\n".join([sys.version.split()[0], *requirements, "--no-deps", *no_deps, *imports])
    check = [str(python), "-c", "; ".join(imports)]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{name}-venv.lock", "w") as lock:  # another test run may be building it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted and subprocess.run(check, capture_output=True).returncode == 0:
            return python
        venv.create(folder, system_site_packages=False, clear=True, with_pip=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for command in [[*pip, *requirements]] + ([[*pip, "--no-deps", *no_deps]] if no_deps else []):
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                pytest.fail(f"Could not build the {name} environment in {folder} (it needs the package index; "
                            f"`-m 'not reference'` skips these tests): {' '.join(command[1:])}\n{result.stderr[-2000:]}")
        result = subprocess.run(check, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"The {name} environment in {folder} was built but does not import what it needs:\n"
                        f"{result.stderr[-2000:]}")
        stamp.write_text(wanted)
    return python


@pytest.fixture(scope="session")
def original_python() -> Path:
    """A Python that runs the original VideoScore stack: mantis-vl's model on transformers 4.44."""
    return reference_python(
        "original",
        [*SHARED_STACK, "transformers==4.44.2", "tokenizers==0.19.1", "huggingface_hub==0.24.6"],
        # Without its dependencies: mantis-vl pins datasets 2.18 and torchvision, which its model does not use.
        no_deps=["mantis-vl==0.0.5"],
        imports=["import av, numpy, PIL, torch", "import transformers",
                 "assert transformers.__version__ == '4.44.2', transformers.__version__",
                 "from mantis.models.idefics2 import Idefics2ForSequenceClassification"],
    )


@pytest.fixture(scope="session")
def videoscore2_python() -> Path:
    """A Python that runs VideoScore2's official inference stack: transformers 4.53.2 and qwen-vl-utils."""
    return reference_python(
        "videoscore2",
        [*SHARED_STACK, "transformers==4.53.2", "tokenizers==0.21.4", "huggingface_hub==0.33.4"],
        # Without its dependencies: qwen-vl-utils wants a torchvision, which cannot live next to this torch
        # (videoscore2_pipeline.py stands in for the two functions it calls).
        no_deps=["qwen-vl-utils==0.0.14"],
        imports=["import av, numpy, torch", "import transformers",
                 "assert transformers.__version__ == '4.53.2', transformers.__version__",
                 "import importlib.util; assert importlib.util.find_spec('qwen_vl_utils')"],
    )
