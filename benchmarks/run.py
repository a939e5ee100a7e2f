#!/usr/bin/env python
"""How fast videoscore-reward is against the reference way of running VideoScore.

The reference path is the original VideoScore example: frames -> PIL images -> the checkpoint's
`Idefics2Processor` -> model, one video per forward pass. Each figure is measured in this run,
next to its baseline, and reported as a ratio (baseline time / our time).

    python benchmarks/run.py                                   # every section
    python benchmarks/run.py preprocess decode                 # some sections
    python benchmarks/run.py --results benchmarks/RESULTS.md   # also append the tables there

Sections: `preprocess` (frames to model inputs), `e2e` (tiny checkpoint, CPU), `decode` (files to
frames), `gpu` (the real architecture with random weights; on a machine without CUDA it checks its
FLOPs formula and code path on CPU with a scaled-down config instead), `serving` (the reward server
with 1, 4 and 16 concurrent clients against in-process calls). See benchmarks/README.md.
The harness, the reference paths, the FLOPs model and each section are modules of this folder.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # The `benchmarks` package is this file's folder; make it importable when run as a script.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.cli import main

    sys.exit(main())
