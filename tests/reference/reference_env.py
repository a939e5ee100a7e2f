"""Environments that run an original implementation next to ours, built once and kept between runs.

Each is a venv of its own (no system site-packages: a venv's base interpreter lacks the test
environment's packages) under ~/.cache/videoscore-reward, with every package it needs installed
explicitly. Building one needs the package index; `pytest -m "not reference"` skips the tests that use
one. Imported by tests/reference/conftest.py (and by any family's reference fixture) as `reference_env`.
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
        if (python.exists() and stamp.exists() and stamp.read_text() == wanted
                and subprocess.run(check, capture_output=True).returncode == 0):
            return python
        venv.create(folder, system_site_packages=False, clear=True, with_pip=bool(requirements or no_deps))
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for command in ([[*pip, *requirements]] if requirements else []) + ([[*pip, "--no-deps", *no_deps]] if no_deps else []):
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
