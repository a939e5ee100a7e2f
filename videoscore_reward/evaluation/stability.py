"""`stability`: how much does a score move under changes that should not change a video's quality?

Each video is written again under each transformation (re-encoded at a few H.264 CRF values, downscaled
to 360p/240p, converted to another frame rate, every other frame dropped, mirrored) with PyAV, and the
new file is scored the way `videoscore-reward score` scores any file (`load_video`, then the reward).
The change against the original file's score is what a user should read as noise.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..files import describe, read_frames
from ..folder.find import find_videos, resolve_prompt
from ..spreadsheet import write_csv
from . import plots
from .tables import REWARD


@dataclass(frozen=True)
class Transform:
    """One change to a video file. keep: fraction of frames kept, evenly spread (the first is kept);
    retime: the frame rate falls with `keep` so the duration stays (a frame-rate conversion), else the
    rate stays and the video gets shorter. short_side: downscale (bicubic) so the shorter side has
    this many pixels. crf: H.264 (libx264, yuv420p) at this CRF; None: lossless RGB H.264
    (libx264rgb, CRF 0), so only the transformation itself changes the pixels. `copy`: no new file,
    the original is scored a second time (run-to-run noise)."""

    name: str
    crf: int | None = None
    short_side: int | None = None
    keep: Fraction = Fraction(1)
    retime: bool = False
    mirror: bool = False
    copy: bool = False


TRANSFORMS: tuple[Transform, ...] = (
    Transform("same file again", copy=True),
    Transform("crf 18", crf=18),
    Transform("crf 23", crf=23),
    Transform("crf 28", crf=28),
    Transform("360p", short_side=360),
    Transform("240p", short_side=240),
    Transform("fps x2/3", keep=Fraction(2, 3), retime=True),
    Transform("every other frame", keep=Fraction(1, 2)),
    Transform("mirror", mirror=True),
)
"""The default transformations, in report order."""


def get_transforms(names: Sequence[str] | None = None) -> list[Transform]:
    """The transformations named (all by default), in `TRANSFORMS` order; ValueError for unknown names."""
    if names is None:
        return list(TRANSFORMS)
    known = {t.name: t for t in TRANSFORMS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown transformation(s) {unknown}; expected names from {list(known)}.")
    return [t for t in TRANSFORMS if t.name in names]


def _kept(index: int, keep: Fraction) -> bool:
    # Frame i survives when ceil((i + 1) * keep) passes an integer: evenly spread, the first kept.
    return math.ceil((index + 1) * keep) > math.ceil(index * keep)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def transcode(source: Path, target: Path, transform: Transform) -> bool:
    """Write `source` under `transform` to the MP4 file `target`. Returns False when the transform
    does not apply (a downscale of a video that is already that small)."""
    with av.open(str(source)) as inp:
        stream = next(s for s in inp.streams.video if not s.disposition & av.stream.Disposition.attached_pic)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(24)
        if transform.retime:
            rate = Fraction(rate) * transform.keep
        codec = "libx264rgb" if transform.crf is None else "libx264"
        with av.open(str(target), "w", format="mp4") as out:
            encoder = out.add_stream(codec, rate=rate, options={"crf": str(transform.crf or 0)})
            configured = False  # PyAV's defaults (640x480, yuv420p) would rescale every frame
            for index, frame in enumerate(inp.decode(stream)):
                if not _kept(index, transform.keep):
                    continue
                image = frame.to_ndarray(format="rgb24")
                # Copied from videoscore_reward.reward.video._decode_pass: frames as they are displayed.
                turns = round((frame.rotation or 0) / 90) % 4
                if turns:
                    image = np.rot90(image, k=turns)
                if transform.mirror:
                    image = image[:, ::-1]
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                if transform.short_side:
                    scale = transform.short_side / min(picture.width, picture.height)
                    if scale >= 1:
                        return False
                    picture = picture.reformat(width=_even(picture.width * scale), height=_even(picture.height * scale),
                                               interpolation="BICUBIC")
                if not configured:
                    encoder.width, encoder.height = picture.width, picture.height
                    odd = picture.width % 2 or picture.height % 2
                    encoder.pix_fmt = "rgb24" if transform.crf is None else ("yuv444p" if odd else "yuv420p")
                    configured = True
                out.mux(encoder.encode(picture))
            out.mux(encoder.encode(None))
    return True


@dataclass
class StabilityResult:
    """Per-video scores under each transformation. `rows` has one row per (video, transform):
    video_name, transform, the score of each column (aspects and "reward"), the change against the
    original (`<column> change`) and an error ("" when fine; "skipped: ..." when it did not apply)."""

    columns: list[str]
    transforms: list[str]
    rows: pd.DataFrame
    tiny_random: bool = False  # scored by a tiny random checkpoint: the plot says so

    def summary(self) -> dict:
        """{transform: {"n": videos, "changes": {column: {"mean", "mean_abs", "max_abs"}}}} over videos."""
        report = {}
        for name in self.transforms:
            done = self.rows[(self.rows["transform"] == name) & (self.rows["error"] == "")]
            changes = {}
            for column in self.columns:
                delta = done[f"{column} change"].to_numpy(float)
                changes[column] = (
                    {"mean": float(delta.mean()), "mean_abs": float(np.abs(delta).mean()), "max_abs": float(np.abs(delta).max())}
                    if len(delta) else {"mean": None, "mean_abs": None, "max_abs": None}
                )
            report[name] = {"n": int(len(done)), "changes": changes}
        return report

    def markdown(self) -> str:
        """The summary as a Markdown table: mean change (signed) / max absolute change, per column."""
        head = "| transformation | n | " + " | ".join(self.columns) + " |"
        lines = [head, "|---|---:|" + "---:|" * len(self.columns)]
        for name, entry in self.summary().items():
            cells = [
                "n/a" if c["mean"] is None else f"{c['mean']:+.3f} / {c['max_abs']:.3f}" for c in entry["changes"].values()
            ]
            lines.append(f"| {name} | {entry['n']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\nEach cell: mean change / largest absolute change, against the original file's score.\n"

    def write(self, out: str | os.PathLike) -> list[Path]:
        """Write stability.csv (every row), stability.json (summary), stability.md and stability.png."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        table = out / "stability.csv"
        write_csv(self.rows, table)
        summary = self.summary()
        report = out / "stability.json"
        report.write_text(json.dumps({"transforms": summary}, indent=2) + "\n")
        markdown = out / "stability.md"
        markdown.write_text("# Score change under transformations\n\n" + self.markdown() + "\n![stability](stability.png)\n")
        scored = {n: e for n, e in summary.items() if e["n"]}
        plot = plots.stability_bars(
            {n: [e["changes"][c]["mean_abs"] for c in self.columns] for n, e in scored.items()},
            {n: [e["changes"][c]["max_abs"] for c in self.columns] for n, e in scored.items()},
            self.columns, out / "stability.png",
            title="Score change under transformations" + (" (tiny random model)" if self.tiny_random else ""),
        )
        return [table, report, markdown, plot]


def stability(
    reward,
    folder: str | os.PathLike,
    *,
    transforms: Sequence[str] | None = None,
    prompt: str | None = None,
    prompts: Mapping[str, str] | None = None,
    workers: int = 4,
    progress: bool = True,
) -> StabilityResult:
    """Score every video below `folder` as it is and under each transformation.

    reward: a `VideoScoreReward` (anything with `aspects`, `num_frames` and the reward call).
    transforms: names from `TRANSFORMS` (default all). Prompts as for `videoscore-reward score`:
    `prompt` for all, else `prompts` by file name, else a sidecar NAME.txt, else the file name.
    workers: threads writing the transformed files of a video. A video that cannot be decoded gets
    error rows and the run goes on.
    """
    chosen = get_transforms(transforms)
    columns = [*reward.aspects, REWARD]
    folder = Path(folder)
    videos = find_videos(folder)
    rows = []
    with tempfile.TemporaryDirectory(prefix="videoscore-stability-") as tmp, ThreadPoolExecutor(workers) as pool:
        for path in tqdm(videos, desc="stability", unit="video", disable=not progress):
            name = path.relative_to(folder).as_posix()
            base = {"video_name": name, "transform": ""}
            original = read_frames(path, reward.num_frames)
            try:
                text = resolve_prompt(path, name, prompt, prompts or {})
            except (OSError, ValueError) as error:  # a bad sidecar NAME.txt (SidecarError)
                original.error = error
            if original.error is not None:  # one bad file must not stop the run
                rows += [{**base, "transform": t.name, "error": describe(original.error)} for t in chosen]
                continue
            targets = [Path(tmp) / f"{k}.mp4" for k in range(len(chosen))]
            frames, where = [original.frames], []
            for t, target, outcome in zip(chosen, targets, pool.map(_try_transcode, [path] * len(chosen), targets, chosen)):
                if outcome is True:
                    transformed = original if t.copy else read_frames(target, reward.num_frames)
                    outcome = describe(transformed.error) if transformed.error is not None else ""
                    if not outcome:
                        frames.append(transformed.frames)
                elif outcome is False:
                    outcome = f"skipped: the video is already {t.short_side} px or smaller"
                where.append((t, outcome))
            try:
                output = reward(frames, [text] * len(frames))
            except Exception as error:  # e.g. out of memory: this video's rows say so, the run goes on
                rows += [{**base, "transform": t.name, "error": describe(error)} for t in chosen]
                continue
            values = np.concatenate([output.scores.float().cpu().numpy(), output.rewards.float().cpu().numpy()[:, None]], 1)
            scored = iter(values[1:])
            for t, error in where:
                row = {**base, "transform": t.name, "error": error}
                if not error:
                    new = next(scored)
                    row.update({c: float(v) for c, v in zip(columns, new)})
                    row.update({f"{c} change": float(v - v0) for c, v, v0 in zip(columns, new, values[0])})
                rows.append(row)
            for target in targets:
                target.unlink(missing_ok=True)
    table = pd.DataFrame(rows, columns=["video_name", "transform", *columns, *(f"{c} change" for c in columns), "error"])
    table["error"] = table["error"].fillna("")
    return StabilityResult(columns, [t.name for t in chosen], table, bool(getattr(reward, "is_tiny_random", False)))


def _try_transcode(source: Path, target: Path, transform: Transform) -> bool | str:
    """True when written, False when the transform does not apply, else the error (one line)."""
    if transform.copy:
        return True
    try:
        return transcode(source, target, transform)
    except Exception as error:  # a file the encoder or decoder refuses: this transform's row says why
        return describe(error)
