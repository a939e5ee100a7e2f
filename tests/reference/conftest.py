import os
import subprocess
import venv
from pathlib import Path

import pytest

# The original VideoScore stack: mantis-vl's model on transformers 4.x. Everything else (torch, PyAV,
# Pillow, numpy) comes from the test environment through system site-packages.
ORIGINAL_STACK = ["transformers==4.44.2", "tokenizers==0.19.1", "huggingface_hub==0.24.6", "mantis-vl==0.0.5"]


@pytest.fixture(scope="session")
def original_python() -> Path:
    """A Python that runs the original VideoScore stack, built once and kept between runs."""
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videoscore-reward" / "original-env"
    python = folder / "bin" / "python"
    stamp = folder / "stack.txt"
    wanted = "\n".join(ORIGINAL_STACK)
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        venv.create(folder, system_site_packages=True, clear=True, with_pip=True)
        # No dependencies: mantis-vl pins datasets 2.18 and torchvision, which its model does not use.
        install = [str(python), "-m", "pip", "install", "-q", "--no-deps", *ORIGINAL_STACK]
        result = subprocess.run(install, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"Could not install the original VideoScore stack ({' '.join(ORIGINAL_STACK)}):\n{result.stderr[-2000:]}")
        stamp.write_text(wanted)
    return python
