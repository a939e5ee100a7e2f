"""Everything VideoScore2-specific in one table: aspects, scale, frames, pixels, texts, decoding.

Sources (TIGER-AI-Lab/VideoScore2): `vs2_inference.py` (query, chat turn, 2 fps, generation, regex),
the SFT config `vs2_qwen2_5vl_sft_27k_5e-5_2fps_960_720_8192.yaml` (2 fps, 960x720 pixels per frame),
the SFT targets quoted in `data/data_rl.py` / `data/data_grpo.py` (the answer layout), and
qwen-vl-utils 0.0.11/0.0.14 (frame count rule, per-frame pixel bounds) that `vs2_inference.py` calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from string import Template

QUERY_SHA256 = "63a228e02ca61abc55d941234ee92285c18e517fa35e667e9ba2336dc193298c"


@lru_cache(maxsize=1)
def query_template() -> str:
    """The exact query of `vs2_inference.py` (476 bytes, `$t2v_prompt` placeholder)."""
    data = files(__package__).joinpath("query_template.txt").read_bytes()
    if hashlib.sha256(data).hexdigest() != QUERY_SHA256:
        raise RuntimeError("videoscore2/query_template.txt was altered: the model only knows the original bytes.")
    return data.decode("utf-8")


@dataclass(frozen=True)
class VideoScore2Facts:
    """Facts of the VideoScore2 family. `dataclasses.replace(VIDEOSCORE2, ...)` makes a variant."""

    aspects: tuple[str, ...] = ("visual quality", "text-to-video alignment", "physical/common-sense consistency")
    score_range: tuple[float, float] = (1.0, 5.0)
    # Frame sampling (qwen-vl-utils `smart_nframes`, fps as in vs2_inference.py and the SFT config).
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 768
    frame_factor: int = 2
    # Per-frame pixel bounds. max_pixels is the SFT config's video_max_pixels (960x720); vs2_inference.py
    # runs qwen-vl-utils' default 768*28*28 = 602112 instead (equal for frames of <= 602112 pixels).
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 960 * 720
    total_pixels: float = 128000 * 28 * 28 * 0.9
    # Vision tower geometry and normalization of Qwen2.5-VL's processor.
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    # The chat turn Qwen2.5-VL's template makes of vs2_inference.py's single user message
    # (default system turn, video first, then the query, generation prompt).
    chat_head: str = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
    )
    video_token: str = "<|video_pad|>"
    chat_tail: str = "<|vision_end|>$query<|im_end|>\n<|im_start|>assistant\n"
    # The answer as the SFT targets lay it out ("\n<think>\n...\n</think>\n\n(1) visual quality: 3\n(2) ..."),
    # reasoning left empty; a score digit follows each label.
    answer_prefix: str = "\n<think>\n\n</think>\n\n"
    score_labels: tuple[str, ...] = (
        "(1) visual quality: ",
        "\n(2) text-to-video alignment: ",
        "\n(3) physical/common-sense consistency: ",
    )
    # vs2_inference.py's generation settings.
    max_new_tokens: int = 1024
    temperature: float = 0.7
    top_k: int = 50

    @property
    def digits(self) -> tuple[str, ...]:
        """The score tokens, lowest first: "1" .. "5"."""
        low, high = (int(v) for v in self.score_range)
        return tuple(str(s) for s in range(low, high + 1))

    def query(self, prompt: str) -> str:
        """The filled query: `string.Template.substitute`, the prompt as is (as vs2_inference.py)."""
        return Template(query_template()).substitute(t2v_prompt=prompt)

    def chat_tail_text(self, prompt: str) -> str:
        """Everything after the video tokens, up to and including the generation prompt."""
        return Template(self.chat_tail).substitute(query=self.query(prompt))


VIDEOSCORE2 = VideoScore2Facts()
"""The published VideoScore2 checkpoint's facts."""
