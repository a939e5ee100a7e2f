"""The benchmarks of videoscore-reward (`python benchmarks/run.py`, see benchmarks/README.md)."""
