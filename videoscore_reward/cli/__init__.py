"""The `videoscore-reward` command: score a folder, organise it into a dataset, upload it, serve the app
or the reward, and check the reward (evaluate against human labels, compare two runs, stability under
transformations). Arguments live in `parser`, what each subcommand does in `commands`, and the checks
that run before a model loads in `checks`."""

from __future__ import annotations

import sys

from .commands import HANDLERS
from .parser import DEFAULT_MODEL, build_parser, weights_argument

__all__ = ["DEFAULT_MODEL", "build_parser", "main", "weights_argument"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default `sys.argv[1:]`); returns the exit code."""
    args = build_parser().parse_args(argv)
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
