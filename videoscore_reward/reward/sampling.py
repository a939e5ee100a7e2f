"""Which frames of a video VideoScore looks at."""

from __future__ import annotations


def sample_indices(total_frames: int, num_frames: int | None) -> list[int]:
    """Indices of the frames to keep from a video of `total_frames` frames.

    With N = total_frames and F = num_frames: if N > F, the F indices floor(k * N / F) for
    k = 0..F-1 (uniform, starting at frame 0); otherwise all N frames. `num_frames=None` keeps all.

    The original code computes ``numpy.arange(0, N, N / F).astype(int)``; in floating point that
    differs from the exact formula by one frame in rare cases (e.g. N=208, F=48). We use exact
    integer arithmetic.
    """
    if total_frames < 0:
        raise ValueError(f"total_frames must be >= 0, got {total_frames}.")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None, got {num_frames}.")
    if num_frames is None or total_frames <= num_frames:
        return list(range(total_frames))
    return [k * total_frames // num_frames for k in range(num_frames)]
