"""The system tools the test suite drives: ffmpeg (the reference decoder and test-file maker) and
Debian's Chromium (the app's browser test, driven by Playwright; no browser is ever downloaded).

`python -m videoscore_reward.testing.system_tools` (part of the README's test command) installs the
missing ones with apt when it runs as root on a Debian-like system; otherwise it stops at once, exit
code 1, with the exact command to run. It installs nothing when both are there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium, the browser the app tests drive."""

# apt package -> whether it is there
_TOOLS = {
    "ffmpeg": lambda: shutil.which("ffmpeg") is not None,
    "chromium": lambda: os.access(CHROMIUM, os.X_OK),
}


def missing_tools() -> list[str]:
    """The apt packages of the tools that are not installed (in the order ffmpeg, chromium)."""
    return [package for package, present in _TOOLS.items() if not present()]


def main() -> int:
    missing = missing_tools()
    if not missing:
        return 0
    apt_get = shutil.which("apt-get")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if apt_get is None:
        print(f"error: the tests need {' and '.join(missing)} (ffmpeg on PATH, Chromium at {CHROMIUM}); "
              f"install them with your system's package manager.", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print(f"error: the tests need {' and '.join(missing)}; run: sudo apt-get update && sudo {' '.join(command)}",
              file=sys.stderr)
        return 1
    print(f"installing {' '.join(missing)} with apt-get (the tests drive them)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-q"], command):
        if subprocess.run(step, env=env).returncode != 0:
            print(f"error: `{' '.join(step)}` failed; install {' '.join(missing)} and run the tests again.", file=sys.stderr)
            return 1
    still = missing_tools()
    if still:
        print(f"error: {' '.join(still)} still missing after apt-get install", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
