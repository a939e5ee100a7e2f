"""`VideoScore2Reward`: VideoScore2 behind the shared reward interface.

Two modes. "forced" (default): deterministic and batched; the answer's score line is written for the
model with the reasoning left empty, and each score is read from the distribution over the digits
"1".."5" at its position. "official": generation as `vs2_inference.py` (sampling at temperature 0.7,
top-k 50, up to 1024 new tokens; greedy with `do_sample=False`), a tolerant parser, and the official
soft score; a video whose answer has no readable score gets an error, not an exception.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import torch
from transformers import AutoTokenizer

from ..aspects import Normalize, Weights
from ..base import BaseReward
from ..checkpoints import is_tiny_random
from ..hub import load_pretrained
from ..preprocess import Layout, VideoBatch, check_videos, to_uint8
from ..video import FrameSampler, VideoLoadError
from .facts import VIDEOSCORE2, VideoScore2Facts
from .inputs import Batch, build_batch, encode
from .model import VideoScore2Model, positions_4x
from .output import VideoScore2Output
from .parse import describe_failure, parse_scores
from .preprocess import VideoInputs, sample_frame_indices, video_inputs

Mode = Literal["forced", "official"]


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1)


class VideoScore2Reward(BaseReward):
    """VideoScore2 (three aspects on 1-5) as a reward; load with `VideoScore2Reward.from_pretrained` or
    `VideoScoreReward.from_pretrained`, which dispatches on the checkpoint's config.

    Forced mode scores each aspect with the expected value of its digit distribution,
    ``s = sum_k k * p_k`` (k = 1..5, p = softmax over the five digit logits), in one forward pass over
    video and query and two cached steps of a few tokens (the later labels, each after the previous
    aspect's most probable digit, as greedy decoding would write them).
    """

    num_frames = None  # frames follow the video's length: 2 per second

    def __init__(
        self,
        model: VideoScore2Model,
        tokenizer,
        *,
        facts: VideoScore2Facts = VIDEOSCORE2,
        mode: Mode = "forced",
        weights: Weights = None,
        normalize: Normalize = "raw",
        batch_size: int = 8,
        is_tiny_random: bool = False,
    ):
        if mode not in ("forced", "official"):
            raise ValueError(f"mode must be 'forced' (one forward pass) or 'official' (generation), got {mode!r}.")
        self.aspects = facts.aspects
        self.score_range = facts.score_range
        super().__init__(weights=weights, normalize=normalize, batch_size=batch_size)
        self.model = model
        self.tokenizer = tokenizer
        self.facts = facts
        self.mode = mode
        self.is_tiny_random = is_tiny_random
        self.generation = dict(do_sample=True, temperature=facts.temperature, top_k=facts.top_k,
                               max_new_tokens=facts.max_new_tokens)
        self.digit_ids = torch.tensor([self._single_token(d) for d in facts.digits])
        self.label_ids = [encode(tokenizer, label) for label in facts.score_labels[1:]]

    def _single_token(self, text: str) -> int:
        ids = encode(self.tokenizer, text)
        if len(ids) != 1:
            raise ValueError(f"The tokenizer splits the score {text!r} into {len(ids)} tokens; expected one.")
        return ids[0]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        mode: Mode = "forced",
        weights: Weights = None,
        normalize: Normalize = "raw",
        batch_size: int = 8,
        max_pixels: int | None = None,
        attn_implementation: str = "sdpa",
    ) -> "VideoScore2Reward":
        """Load "TIGER-Lab/VideoScore2", a local folder of it, or "tiny-random-videoscore2" (offline,
        meaningless scores). device: default accelerate's device; dtype: default bfloat16 on CUDA, float32
        elsewhere. max_pixels: per-frame pixel cap (default 960x720 as trained; 602112 is vs2_inference.py's).
        """
        name = os.fspath(name_or_path)
        kwargs = dict(device=device, dtype=dtype, mode=mode, weights=weights, normalize=normalize,
                      batch_size=batch_size, max_pixels=max_pixels, attn_implementation=attn_implementation)
        if name == TINY_RANDOM_VIDEOSCORE2:
            import tempfile

            from .tiny import tiny_videoscore2_checkpoint

            with tempfile.TemporaryDirectory(prefix="videoscore2-tiny-") as tmp:
                return cls.from_pretrained(tiny_videoscore2_checkpoint(tmp), **kwargs)
        model, tokenizer, name = load_pretrained(
            VideoScore2Model, AutoTokenizer, name, device=device, dtype=dtype, attn_implementation=attn_implementation,
            family="VideoScore2", expected_weights="Qwen2.5-VL weights ('visual.*', 'model.*', 'lm_head')",
        )
        facts = VIDEOSCORE2 if max_pixels is None else replace(VIDEOSCORE2, max_pixels=int(max_pixels))
        return cls(model, tokenizer, facts=facts, mode=mode, weights=weights, normalize=normalize, batch_size=batch_size,
                   is_tiny_random=is_tiny_random(model.config))

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def sampling(self) -> FrameSampler:
        """Which frames of a file this model looks at: 2 per second (qwen-vl-utils' rule); for
        `load_video(path, reward.sampling)` / `read_video`."""
        facts = self.facts

        def sampler(total: int, fps: float) -> list[int]:
            if fps <= 0:
                raise VideoLoadError("the file does not say its frame rate, and VideoScore2 samples frames by time.")
            return sample_frame_indices(total, fps, facts)

        return sampler

    def prepare(self, frames: torch.Tensor, fps: float | None = None) -> VideoInputs:
        """uint8 [T, 3, H, W] -> model inputs. With `fps` (the frames' rate) they are sampled at 2 per
        second first; without, all frames are used (at most `max_frames`), as given."""
        if fps is not None:
            frames = frames[sample_frame_indices(frames.shape[0], fps, self.facts)]
        elif frames.shape[0] > self.facts.max_frames:
            frames = frames[torch.linspace(0, frames.shape[0] - 1, self.facts.max_frames).round().long()]
        return video_inputs(frames.to(self.device), self.facts)

    def __call__(
        self,
        videos: VideoBatch,
        prompts: str | Sequence[str],
        *,
        value_range: tuple[float, float] = (0.0, 1.0),
        layout: Layout = "BTCHW",
        fps: float | None = None,
        **generation,
    ) -> VideoScore2Output:
        """Score videos against their prompts.

        videos: float [B, T, C, H, W] in `value_range` (default [0, 1]) or uint8 0-255, `layout="BCTHW"`,
        or a list of [T, C, H, W] tensors of any lengths and sizes. Floats are rounded to 0-255 levels
        first, as a decoded file would be. fps: the frames' rate, to sample 2 per second; default: use
        the frames as given. generation (official mode): overrides of `self.generation`, e.g.
        `do_sample=False` (greedy), `temperature`, `max_new_tokens`.
        Returns a `VideoScore2Output`: scores float32 [B, 3] on 1-5, rewards float32 [B], and the digit
        distributions, integer scores and entropies.
        """
        items = check_videos(videos, layout=layout, value_range=value_range)
        prompts = self.check_prompts(prompts, len(items))
        if generation and self.mode != "official":
            raise TypeError(f"Generation options {sorted(generation)} apply to mode='official' only.")
        outputs = []
        for start in range(0, len(items), self.batch_size):
            chunk = [self.prepare(to_uint8(v, value_range), fps) for v in items[start : start + self.batch_size]]
            texts = prompts[start : start + self.batch_size]
            outputs.append(self._official(chunk, texts, generation) if self.mode == "official" else self._forced(chunk, texts))
        return VideoScore2Output.concat(outputs)

    def _positions(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        vision = self.model.config.vision_config
        time_step = int(self.facts.temporal_patch_size / self.facts.fps) * vision.tokens_per_second
        positions, deltas = positions_4x(batch.mm_token_type_ids, batch.attention_mask, batch.video_grid_thw,
                                         spatial_merge_size=vision.spatial_merge_size, time_step=time_step)
        return positions.to(self.device), (deltas + batch.attention_mask.sum(-1, keepdim=True)).to(self.device)

    @torch.inference_mode()
    def _forced(self, videos: list[VideoInputs], prompts: list[str]) -> VideoScore2Output:
        batch = build_batch(self.tokenizer, self.facts, videos, prompts,
                            answer=self.facts.answer_prefix + self.facts.score_labels[0])
        inputs = batch.to_model(self.device, self.dtype)
        positions, next_position = self._positions(batch)
        out = self.model(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1)
        digit_ids = self.digit_ids.to(self.device)
        digit_logits = [out.logits[:, -1, digit_ids].float()]
        mask = inputs["attention_mask"]
        for label in self.label_ids:
            # The previous aspect's most probable digit, then the next label: what greedy decoding writes.
            chosen = digit_ids[digit_logits[-1].argmax(-1)]
            step = torch.cat([chosen[:, None], torch.tensor(label, device=self.device).expand(len(videos), -1)], 1)
            steps = torch.arange(step.shape[1], device=self.device)
            mask = torch.cat([mask, torch.ones_like(step)], 1)
            out = self.model(input_ids=step, attention_mask=mask, position_ids=(next_position + steps).expand(3, -1, -1),
                             cache=out.cache, use_cache=True, logits_to_keep=1)
            next_position = next_position + step.shape[1]
            digit_logits.append(out.logits[:, -1, digit_ids].float())
        digit_logits = torch.stack(digit_logits, 1)  # [B, A, 5]
        probs = digit_logits.softmax(-1)
        values = torch.tensor([float(d) for d in self.facts.digits], device=self.device)
        scores = probs @ values
        base = self.output(scores)
        return VideoScore2Output(scores=base.scores, rewards=base.rewards, aspects=self.aspects,
                                 digit_logits=digit_logits, probs=probs,
                                 integer_scores=values[probs.argmax(-1)].long(), entropy=_entropy(probs))

    @torch.inference_mode()
    def _official(self, videos: list[VideoInputs], prompts: list[str], overrides: dict) -> VideoScore2Output:
        options = {**self.generation, **overrides}
        if not options.get("do_sample", True):
            options.pop("temperature", None)
            options.pop("top_k", None)
        batch = build_batch(self.tokenizer, self.facts, videos, prompts)
        inputs = batch.to_model(self.device, self.dtype)
        pad = self.tokenizer.pad_token_id
        out = self.model.generate(**inputs, output_scores=True, return_dict_in_generate=True, pad_token_id=pad, **options)
        generated = out.sequences[:, inputs["input_ids"].shape[1]:].cpu()
        count = len(self.aspects)
        scores = torch.full((len(videos), count), math.nan)
        integers = torch.zeros((len(videos), count), dtype=torch.long)
        probs = torch.full((len(videos), count, len(self.facts.digits)), math.nan)
        texts, errors = [], []
        for row in range(len(videos)):
            ids = generated[row].tolist()
            ends = [i for i, t in enumerate(ids) if t in self._stop_ids()]
            ids = ids[: ends[0]] if ends else ids
            text = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            texts.append(text)
            parsed = parse_scores(text)
            errors.append(describe_failure(parsed, self.aspects, text) if parsed.missing else None)
            for k, (value, offset) in enumerate(zip(parsed.scores, parsed.digit_offsets)):
                if value is None:
                    continue
                integers[row, k] = int(value)
                index = self._token_at(ids, offset)
                if index is None:  # the digit shares a token with other text: no distribution to read
                    scores[row, k] = value
                    continue
                p = out.scores[index][row].float().log_softmax(-1).exp()[self.digit_ids.to(out.scores[index].device)].cpu()
                probs[row, k] = p / p.sum()
                best = int(p.argmax())  # ties: the lower score, as the original
                # The official soft score: the most probable digit times its share of the digits' mass.
                scores[row, k] = float(self.facts.digits[best]) * float(p[best] / p.sum())
        scores = scores.to(self.device)
        base = self.output(scores)
        rewards = base.rewards.masked_fill(torch.tensor([e is not None for e in errors], device=self.device), math.nan)
        return VideoScore2Output(scores=base.scores, rewards=rewards, aspects=self.aspects, probs=probs.to(self.device),
                                 integer_scores=integers.to(self.device), entropy=_entropy(probs).to(self.device),
                                 texts=texts, errors=errors)

    def _stop_ids(self) -> set[int]:
        stops = {self.tokenizer.pad_token_id, self.tokenizer.eos_token_id}
        eos = self.model.generation_config.eos_token_id
        stops.update(eos if isinstance(eos, list) else [eos])
        return {s for s in stops if s is not None}

    def _token_at(self, ids: list[int], offset: int) -> int | None:
        """Index of the generated token that holds character `offset` of the decoded text, if that token is
        the digit alone (binary search over decoded prefix lengths)."""
        low, high = 0, len(ids) - 1
        decode = lambda n: self.tokenizer.decode(ids[:n], skip_special_tokens=True, clean_up_tokenization_spaces=False)  # noqa: E731
        while low < high:
            mid = (low + high) // 2
            if len(decode(mid + 1)) > offset:
                high = mid
            else:
                low = mid + 1
        piece = self.tokenizer.decode([ids[low]], skip_special_tokens=True) if ids else ""
        return low if piece.strip() in self.facts.digits else None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mode={self.mode!r}, device={self.device}, dtype={self.dtype}, "
            f"normalize={self.normalize!r}, weights={self.weights_by_aspect()}, batch_size={self.batch_size}"
            + (", tiny random checkpoint: scores are meaningless" if self.is_tiny_random else "")
            + ")"
        )


TINY_RANDOM_VIDEOSCORE2 = "tiny-random-videoscore2"
"""Model name that loads a freshly written tiny random VideoScore2 checkpoint (offline, meaningless scores)."""
