"""Reward-hacking guards and run bookkeeping: held-out videos written as an mp4 grid, a stop when an aspect that
is not optimised drifts down (public GRPO runs drift to a cartoon style under a visual-quality reward), and
finding the latest checkpoint."""

from __future__ import annotations

import glob
import math
import os
import re

import av
import torch


def video_grid(videos: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """Tile videos into one: float [N, F, C, H, W] in [0, 1] -> uint8 [F, rows * H, columns * W, 3] (empty
    cells black). columns defaults to ceil(sqrt(N))."""
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"videos must be float [N, F, 3, H, W], got {tuple(videos.shape)}.")
    count, frames, _, height, width = videos.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = torch.zeros(frames, rows * height, columns * width, 3, dtype=torch.uint8)
    pixels = (videos.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu()
    for i in range(count):
        row, column = divmod(i, columns)
        grid[:, row * height : (row + 1) * height, column * width : (column + 1) * width] = pixels[i]
    return grid


def write_video_grid(path: str | os.PathLike, videos: torch.Tensor, fps: int = 8, columns: int | None = None) -> None:
    """Write `video_grid(videos)` as an H.264 mp4 (PyAV); odd grid sizes are padded to even ones for yuv420p."""
    grid = video_grid(videos, columns)
    pad_h, pad_w = grid.shape[1] % 2, grid.shape[2] % 2
    if pad_h or pad_w:
        grid = torch.nn.functional.pad(grid.permute(0, 3, 1, 2), (0, pad_w, 0, pad_h)).permute(0, 2, 3, 1)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = grid.shape[1], grid.shape[2], "yuv420p"
        for frame in grid.numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


class DriftGuard:
    """Stop when a watched aspect's held-out mean falls more than `margin` below its first value.

    aspects: the info keys to watch (aspects the reward does not optimise). `update(means)` takes one eval's
    {aspect: mean} and returns the reason to stop, or None. Its state is part of a checkpoint.
    """

    def __init__(self, aspects: list[str], margin: float):
        if margin <= 0:
            raise ValueError(f"drift_margin must be > 0, got {margin}.")
        self.aspects, self.margin = list(aspects), float(margin)
        self.baseline: dict[str, float] = {}

    def update(self, means: dict[str, float]) -> str | None:
        missing = [a for a in self.aspects if a not in means]
        if missing:
            raise ValueError(f"The drift guard watches {missing}, but the reward function's info has only {sorted(means)}.")
        if not self.baseline:
            self.baseline = {a: float(means[a]) for a in self.aspects}
            return None
        for aspect in self.aspects:
            drop = self.baseline[aspect] - float(means[aspect])
            if drop > self.margin:
                return (f"held-out {aspect!r} fell by {drop:.4f} (from {self.baseline[aspect]:.4f} to "
                        f"{float(means[aspect]):.4f}), more than drift_margin={self.margin}")
        return None

    def state_dict(self) -> dict:
        return {"baseline": dict(self.baseline)}

    def load_state_dict(self, state: dict) -> None:
        self.baseline = dict(state["baseline"])


def drift_guard_for(config, reward_fn) -> DriftGuard | None:
    """The drift guard a config asks for: its `drift_aspects`, or else the aspects of weight 0 in the reward
    function (`reward_fn.aspects`, `reward_fn.weights`); None without `drift_margin`."""
    if config.drift_margin is None:
        return None
    if config.drift_aspects:
        return DriftGuard([a.strip() for a in config.drift_aspects.split(",") if a.strip()], config.drift_margin)
    weights, names = getattr(reward_fn, "weights", None), getattr(reward_fn, "aspects", None)
    if weights is None or names is None:
        raise ValueError("drift_margin without drift_aspects needs a reward_fn with `aspects` and `weights` "
                         "(the aspects of weight 0 are watched); or name them in drift_aspects.")
    aspects = [name for name, weight in zip(names, torch.as_tensor(weights).tolist()) if weight == 0]
    if not aspects:
        raise ValueError("drift_margin: every aspect has a positive weight; name the aspects to watch in drift_aspects.")
    return DriftGuard(aspects, config.drift_margin)


def latest_checkpoint(project_dir: str) -> str:
    """The checkpoint-EPOCH folder of project_dir with the highest EPOCH."""
    numbered = [(int(m.group(1)), path) for path in glob.glob(os.path.join(project_dir, "checkpoint-*"))
                if (m := re.search(r"checkpoint-(\d+)$", path))]
    if not numbered:
        raise FileNotFoundError(f"resume_from='latest': no checkpoint-EPOCH folder in {project_dir}.")
    return max(numbered)[1]
