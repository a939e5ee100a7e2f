"""`best_of_n`: generate N candidates per prompt with a diffusers video pipeline, score them, keep the best."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ...folder.table import write_atomically
from ...reward import BaseReward, RewardOutput
from ...reward.base import check_count
from .output import save_video

PER_PROMPT_TEXT = ("negative_prompt", "prompt_2", "negative_prompt_2")
"""Pipeline arguments that may be a list with one entry per prompt, paired with each candidate."""
PER_PROMPT_IMAGES = ("image", "last_image")
"""Image arguments that may be a list with one image per prompt; pipelines take one image per call, so
candidates of different prompts never share a call then."""


@dataclass
class Candidate:
    """One generated video: its seed, reward and aspect scores (`aspects` order of the reward).
    video: float [F, C, H, W] in [0, 1] when `keep="all"`, else None; path: where it was written."""

    seed: int
    reward: float
    scores: list[float]
    video: torch.Tensor | None = None
    path: Path | None = None


@dataclass
class BestOfN:
    """The winner among the candidates of one prompt.

    video: float [F, C, H, W] in [0, 1] (the pipeline's "pt" output); candidates: every candidate,
    best first (higher reward, then lower seed).
    """

    prompt: str
    video: torch.Tensor
    seed: int
    reward: float
    candidates: list[Candidate] = field(default_factory=list)


def _per_prompt(pipe_kwargs: dict, count: int) -> dict[str, list]:
    per_prompt = {}
    for name in (*PER_PROMPT_TEXT, *PER_PROMPT_IMAGES):
        value = pipe_kwargs.get(name)
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise ValueError(f"{name} has {len(value)} entries for {count} prompts: give one per prompt, or a "
                                 f"single value for all.")
            per_prompt[name] = list(value)
    return per_prompt


def _chunks(jobs: list[tuple[int, int]], chunk_size: int, by_prompt: bool) -> list[list[tuple[int, int]]]:
    if not by_prompt:
        return [jobs[i : i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    chunks = []
    for p in sorted({p for p, _ in jobs}):
        own = [job for job in jobs if job[0] == p]
        chunks += [own[i : i + chunk_size] for i in range(0, len(own), chunk_size)]
    return chunks


def best_of_n(
    pipe,
    prompt: str | Sequence[str],
    n: int,
    reward: BaseReward,
    *,
    seeds: Sequence[int] | None = None,
    chunk_size: int = 4,
    keep: str = "best",
    output_dir: str | os.PathLike | None = None,
    fps: int = 8,
    **pipe_kwargs,
) -> list[BestOfN]:
    """Generate `n` candidates per prompt, score them, keep the best.

    Candidate k of every prompt uses `seeds[k]` (default 0..n-1) through its own torch.Generator, so
    a winner is reproduced by generating its prompt with its seed alone (to float rounding: batch
    composition changes the last bits, see the README). Generation runs in chunks of at most
    `chunk_size` videos; each chunk is scored in the background (`reward.submit`) while the next one
    is generated. Ties go to the lower seed.

    pipe_kwargs go to the pipeline (num_frames, num_inference_steps, guidance_scale, ...).
    `negative_prompt` (and `prompt_2`, `negative_prompt_2`) may be a list with one entry per prompt;
    `image` (and `last_image`) for image-to-video may be one image for all or a list of one per prompt.
    keep: "best" keeps only each prompt's winning video in memory; "all" also sets every
    `Candidate.video`. output_dir: write every candidate as `p{prompt:04d}_seed{seed}.mp4` and
    `scores.csv` (the `score` command's columns, so `videoscore-reward organize DIR --scores
    DIR/scores.csv --out DATASET` turns it into a dataset; best/worst pairs per prompt feed DPO/RWR).
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    check_count("n", n)
    check_count("chunk_size", chunk_size)
    if keep not in ("best", "all"):
        raise ValueError(f"keep must be 'best' or 'all', got {keep!r}.")
    seeds = list(range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n or len(set(seeds)) != n:
        raise ValueError(f"seeds must be {n} distinct integers, got {seeds}.")
    if "output_type" in pipe_kwargs or "generator" in pipe_kwargs:
        raise ValueError("best_of_n sets output_type and generator itself; do not pass them.")
    if pipe_kwargs.get("latents") is not None:
        raise ValueError("best_of_n draws each candidate's initial noise from its seed; latents= would make every "
                         "candidate start from the same noise. Leave latents out and choose seeds=.")
    if pipe_kwargs.get("num_videos_per_prompt", 1) != 1:
        raise ValueError(f"n is the number of candidates per prompt; got num_videos_per_prompt={pipe_kwargs['num_videos_per_prompt']}.")
    per_prompt = _per_prompt(pipe_kwargs, len(prompts))
    folder = Path(output_dir) if output_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    jobs = [(p, seed) for p in range(len(prompts)) for seed in seeds]
    chunks = _chunks(jobs, chunk_size, by_prompt=any(name in per_prompt for name in PER_PROMPT_IMAGES))
    candidates: list[list[Candidate]] = [[] for _ in prompts]
    best: list[tuple[float, int, torch.Tensor] | None] = [None] * len(prompts)
    rows: list[dict] = []
    aspects: list[str] = []
    generator_device = getattr(pipe, "device", torch.device("cpu"))

    def collect(chunk, frames: torch.Tensor, scored: Future) -> None:
        output: RewardOutput = scored.result()
        aspects[:] = output.aspects
        for (p, seed), video, value, scores in zip(chunk, frames, output.rewards.tolist(), output.scores.tolist()):
            candidate = Candidate(seed, value, scores, video.clone() if keep == "all" else None)
            if folder is not None:
                candidate.path = _write_candidate(folder, p, seed, video, fps)
                rows.append({"video_name": candidate.path.name, **dict(zip(output.aspects, scores)), "reward": value,
                             "prompt": prompts[p], "num_frames": len(video), "error": ""})
            candidates[p].append(candidate)
            if best[p] is None or (value, -seed) > (best[p][0], -best[p][1]):
                best[p] = (value, seed, video.clone())  # a view would keep the whole chunk alive

    pending = None
    for chunk in tqdm(chunks, desc="best-of-n", unit="chunk", disable=len(chunks) < 2):
        kwargs = dict(pipe_kwargs)
        for name, values in per_prompt.items():
            # Text goes per video; an image per call (a chunk holds one prompt then).
            kwargs[name] = values[chunk[0][0]] if name in PER_PROMPT_IMAGES else [values[p] for p, _ in chunk]
        frames = pipe(
            prompt=[prompts[p] for p, _ in chunk],
            generator=[torch.Generator(generator_device).manual_seed(seed) for _, seed in chunk],
            output_type="pt",
            **kwargs,
        ).frames
        scored = _submit(reward, frames, [prompts[p] for p, _ in chunk])
        if pending is not None:
            collect(*pending)  # the previous chunk was scored while this one was generated
        pending = (chunk, frames, scored)
    collect(*pending)

    if folder is not None:
        columns = ["video_name", *aspects, "reward", "prompt", "num_frames", "error"]
        write_atomically(pd.DataFrame(rows, columns=columns), folder / "scores.csv")
    results = []
    for p, text in enumerate(prompts):
        value, seed, video = best[p]
        ranked = sorted(candidates[p], key=lambda c: (-c.reward, c.seed))
        results.append(BestOfN(prompt=text, video=video, seed=seed, reward=value, candidates=ranked))
    return results


def _submit(reward, frames: torch.Tensor, prompts: list[str]) -> Future:
    if hasattr(reward, "submit"):
        return reward.submit(frames, prompts)
    done = Future()  # a plain callable scores at once
    done.set_result(reward(frames, prompts))
    return done


def _write_candidate(folder: Path, prompt_index: int, seed: int, video: torch.Tensor, fps: int) -> Path:
    return save_video(video, folder / f"p{prompt_index:04d}_seed{seed}.mp4", fps=fps)
