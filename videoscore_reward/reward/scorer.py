"""`VideoScoreReward`: VideoScore as a batched, gradient-free reward."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Sequence

import torch
from transformers import AutoProcessor

from .aspects import Normalize, Weights
from .base import BaseReward, check_count
from .checkpoints import FAMILIES, TINY_RANDOM, find_checkpoint, is_tiny_random
from .hub import load_pretrained, locate_checkpoint
from .model import VideoScoreModel
from .output import RewardOutput
from .preprocess import ImageSettings, Layout, VideoBatch, check_videos, preprocess_videos
from .prompt import build_query, neutralize_special_tokens

logger = logging.getLogger(__name__)

_FAMILY = FAMILIES["videoscore"]

_PROMPT_EDGE_SLACK = 8


def _resolve_num_frames(name_or_path: str, config) -> int:
    """The frames per video a checkpoint was trained with: from its config, else from the registry."""
    frames = getattr(config, "num_frames", None)
    if frames:
        return int(frames)
    checkpoint = find_checkpoint(name_or_path)
    if checkpoint and checkpoint.num_frames:
        return checkpoint.num_frames
    logger.warning(
        "Cannot tell how many frames %r was trained with; using %d (VideoScore v1). "
        "Pass num_frames=48 for VideoScore-v1.1.",
        name_or_path,
        _FAMILY.default_num_frames,
    )
    return _FAMILY.default_num_frames


def _is_videoscore2(name: str) -> bool:
    """Whether `name` (a tiny-random name, or already located by `locate_checkpoint`) is a VideoScore2
    checkpoint: by name, else by the model type in its config."""
    from .videoscore2 import TINY_RANDOM_VIDEOSCORE2

    checkpoint = find_checkpoint(name)
    if name == TINY_RANDOM_VIDEOSCORE2 or (checkpoint is not None and checkpoint.family == "videoscore2"):
        return True
    if name == TINY_RANDOM or checkpoint is not None:
        return False
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(name)
    except (OSError, ValueError):
        return False  # the loader below says why it cannot load it
    return config.get("model_type") == "qwen2_5_vl"


class VideoScoreReward(BaseReward):
    """VideoScore as a reward: videos and prompts in, five aspect scores and a scalar reward out.

    Load with `from_pretrained`. Calls run under `torch.inference_mode`, split large batches into
    chunks of `batch_size` videos, and return a `RewardOutput` in input order.

    The reward is the weighted mean of the normalized aspect scores:
    ``reward = sum_i w_i * n(s_i) / sum_i w_i`` with ``n(s) = s`` for ``normalize="raw"`` (1-4) and
    ``n(s) = (s - 1) / 3`` for ``normalize="unit"`` ([0, 1]). `weights` is a dict by aspect name
    (aspects left out weigh 0) or a sequence of five numbers in `ASPECTS` order; the default weighs
    all five equally.
    """

    aspects = _FAMILY.aspects
    score_range = _FAMILY.score_range

    def __init__(
        self,
        model: VideoScoreModel,
        processor,
        *,
        num_frames: int | None,
        weights: Weights = None,
        normalize: Normalize = "raw",
        batch_size: int = 8,
        is_tiny_random: bool = False,
    ):
        super().__init__(weights=weights, normalize=normalize, batch_size=batch_size)
        self.model = model
        self.processor = processor
        self.num_frames = None if num_frames is None else check_count("num_frames", num_frames)
        tokenizer = processor.tokenizer
        self._special_tokens = frozenset(tokenizer.all_special_tokens) | frozenset(tokenizer.get_added_vocab())
        self._query_lengths: dict[int, int] = {}
        self.is_tiny_random = is_tiny_random
        self.image_settings = ImageSettings.from_image_processor(processor.image_processor)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        num_frames: int | None = None,
        weights: Weights = None,
        normalize: Normalize = "raw",
        batch_size: int = 8,
        attn_implementation: str = "sdpa",
        **videoscore2_options,
    ) -> BaseReward:
        """Load a VideoScore checkpoint: a hub id (e.g. "TIGER-Lab/VideoScore-v1.1"), a local folder,
        or "tiny-random" for an offline random checkpoint (meaningless scores).

        A VideoScore2 checkpoint ("TIGER-Lab/VideoScore2", a folder whose config is Qwen2.5-VL's, or
        "tiny-random-videoscore2") gives a `VideoScore2Reward` instead, with the same interface;
        `videoscore2_options` (`mode`, `max_pixels`) go to its `from_pretrained`.

        device: default is accelerate's device for this process (the GPU when there is one).
        dtype: default bfloat16 on CUDA, float32 elsewhere.
        num_frames: frames sampled per video; default per checkpoint (16 for v1, 48 for v1.1).
        """
        from .videoscore2 import TINY_RANDOM_VIDEOSCORE2

        name = os.fspath(name_or_path)
        if name not in (TINY_RANDOM, TINY_RANDOM_VIDEOSCORE2):
            # Once, before the config is read to tell the families apart: offline, that read alone would
            # retry for half a minute; the loaders below take the located folder as it is.
            name = locate_checkpoint(name)
        if _is_videoscore2(name):
            from .videoscore2 import VideoScore2Reward

            if num_frames is not None:
                raise ValueError(
                    f"num_frames={num_frames} does not apply to VideoScore2 ({name}): it samples 2 frames per second."
                )
            return VideoScore2Reward.from_pretrained(
                name, device=device, dtype=dtype, weights=weights, normalize=normalize, batch_size=batch_size,
                attn_implementation=attn_implementation, **videoscore2_options,
            )
        if videoscore2_options:
            raise TypeError(f"{sorted(videoscore2_options)} apply to VideoScore2 checkpoints only, not {name}.")
        if name == TINY_RANDOM:
            from .tiny import tiny_checkpoint

            with tempfile.TemporaryDirectory(prefix="videoscore-tiny-") as tmp:
                return cls.from_pretrained(
                    tiny_checkpoint(tmp), device=device, dtype=dtype, num_frames=num_frames,
                    weights=weights, normalize=normalize, batch_size=batch_size,
                    attn_implementation=attn_implementation,
                )
        model, processor, name = load_pretrained(
            VideoScoreModel, AutoProcessor, name, device=device, dtype=dtype, attn_implementation=attn_implementation,
            family="VideoScore", expected_weights="Idefics2 weights under 'model.' and the 5-output head 'score'",
        )
        # Whatever the folder's processor says: VideoScore was trained without image splitting.
        processor.image_processor.do_image_splitting = _FAMILY.image_processor["do_image_splitting"]
        if num_frames is None:
            num_frames = _resolve_num_frames(name, model.config)
        return cls(
            model,
            processor,
            num_frames=num_frames,
            weights=weights,
            normalize=normalize,
            batch_size=batch_size,
            is_tiny_random=is_tiny_random(model.config),
        )

    @property
    def device(self) -> torch.device:
        """Where the model runs, and where outputs are returned."""
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's dtype (pixel values are cast to it; scores come back as float32)."""
        return self.model.dtype

    def __call__(
        self,
        videos: VideoBatch,
        prompts: str | Sequence[str],
        *,
        value_range: tuple[float, float] = (0.0, 1.0),
        layout: Layout = "BTCHW",
    ) -> RewardOutput:
        """Score a batch of videos against their prompts.

        videos: float tensor [B, T, C, H, W] with values in `value_range` (default [0, 1], what
        diffusers returns with output_type="pt"; (-1, 1) for VAE-range data), or uint8 [0, 255];
        `layout="BCTHW"` for channels-first video; or a list of [T, C, H, W] tensors of different
        lengths and sizes. C must be 3 (RGB). Any device; frames move to the reward's device after
        temporal sampling.
        prompts: one string per video; a single string is used for all.
        Returns a `RewardOutput` on the reward's device: scores float32 [B, 5], rewards float32 [B].
        """
        items = check_videos(videos, layout=layout, value_range=value_range)
        prompts = self.check_prompts(prompts, len(items))
        outputs = [
            self._score_chunk(items[start : start + self.batch_size], prompts[start : start + self.batch_size], value_range)
            for start in range(0, len(items), self.batch_size)
        ]
        return RewardOutput.concat(outputs)

    @torch.inference_mode()
    def prepare_inputs(
        self,
        videos: VideoBatch,
        prompts: str | Sequence[str],
        *,
        value_range: tuple[float, float] = (0.0, 1.0),
        layout: Layout = "BTCHW",
    ) -> dict[str, torch.Tensor]:
        """The model inputs a call computes for `videos` and `prompts` (arguments as for a call), in one
        chunk whatever `batch_size` is, on the reward's device:

        input_ids long [B, L] and attention_mask long [B, L] (the queries, right padded);
        pixel_values [B, F, 3, H, W] in the model's dtype (normalized, zero padded to the longest video
        F and the largest frame H x W); pixel_attention_mask bool [B, F, H, W] (True on real pixels).
        """
        items = check_videos(videos, layout=layout, value_range=value_range)
        return self._inputs(items, self.check_prompts(prompts, len(items)), value_range)

    def _inputs(self, videos: list[torch.Tensor], prompts: list[str], value_range: tuple[float, float]) -> dict[str, torch.Tensor]:
        device = self.device
        pixel_values, pixel_mask, counts = preprocess_videos(
            videos, num_frames=self.num_frames, settings=self.image_settings, device=device, value_range=value_range
        )
        text = self.processor(
            text=[build_query(self.fit_prompt(prompt, count), count) for prompt, count in zip(prompts, counts)],
            padding="longest",
            padding_side="right",
            return_tensors="pt",
        )
        return dict(
            input_ids=text["input_ids"].to(device),
            attention_mask=text["attention_mask"].to(device),
            pixel_values=pixel_values.to(self.dtype),
            pixel_attention_mask=pixel_mask,
        )

    @torch.inference_mode()
    def _score_chunk(self, videos: list[torch.Tensor], prompts: list[str], value_range: tuple[float, float]) -> RewardOutput:
        return self.output(self.model(**self._inputs(videos, prompts, value_range)).logits)

    def max_prompt_tokens(self, num_frames: int) -> int:
        """How many tokens a prompt may have next to `num_frames` frames: the text model's positions
        minus the query's own tokens (template and frames, each frame 64 image tokens and its markers)
        and 8 tokens of slack."""
        if num_frames not in self._query_lengths:
            query = self.processor(text=[build_query("", num_frames)])["input_ids"][0]
            self._query_lengths[num_frames] = len(query)
        positions = self.model.config.text_config.max_position_embeddings
        # A few tokens of slack: the prompt's edges may merge differently inside the template's quotes.
        budget = positions - self._query_lengths[num_frames] - _PROMPT_EDGE_SLACK
        if budget < 1:
            raise ValueError(
                f"{num_frames} frames take {self._query_lengths[num_frames]} of the model's {positions} positions, "
                "leaving none for the prompt: pass fewer num_frames."
            )
        return budget

    def fit_prompt(self, prompt: str, num_frames: int) -> str:
        """The prompt as the model reads it next to `num_frames` frames.

        Special tokens of the tokenizer (`<image>`, `<s>`, `</s>`, `<end_of_utterance>`, ...) are
        neutralised into plain words, with a warning: a prompt is data, and one odd prompt must neither
        take a frame's place in the query nor stop a training run or a folder of videos. A prompt longer
        than `max_prompt_tokens(num_frames)` is cut to that many tokens, with a warning, for the same reason.
        """
        clean = neutralize_special_tokens(prompt, self._special_tokens)
        if clean != prompt:
            warnings.warn(
                f"Prompt {prompt[:60]!r} contains special tokens of the tokenizer; they are read as plain words.",
                stacklevel=3,
            )
        budget = self.max_prompt_tokens(num_frames)
        # Each token covers at least one UTF-8 byte (plus a possible leading-space token), so only prompts
        # with more bytes than the budget can be too long and need the tokenizer.
        if len(clean.encode("utf-8")) + 1 > budget:
            ids = self.processor.tokenizer(clean, add_special_tokens=False)["input_ids"]
            if len(ids) > budget:
                warnings.warn(
                    f"Prompt {clean[:60]!r}... has {len(ids)} tokens, more than the {budget} that fit beside "
                    f"{num_frames} frames; it is cut to {budget} tokens.",
                    stacklevel=3,
                )
                clean = self.processor.tokenizer.decode(ids[:budget])
        return clean

    def __repr__(self) -> str:
        weights = self.weights_by_aspect()
        return (
            f"{type(self).__name__}(num_frames={self.num_frames}, device={self.device}, dtype={self.dtype}, "
            f"normalize={self.normalize!r}, weights={weights}, batch_size={self.batch_size}"
            + (", tiny random checkpoint: scores are meaningless" if self.is_tiny_random else "")
            + ")"
        )
