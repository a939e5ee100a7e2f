"""Token ids and video tensors of a batch, left-padded, as VideoScore2's chat turn lays them out."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..prompt import neutralize_special_tokens
from .facts import VideoScore2Facts
from .preprocess import VideoInputs

VIDEO_TYPE = 2  # transformers' mm_token_type_ids: 0 text, 1 image, 2 video


@dataclass
class Batch:
    """Model inputs of B videos. Left padding, so every row's last token is at the same index:
    the forced score positions line up and generation appends to all rows alike.

    input_ids, attention_mask, mm_token_type_ids: long [B, L].
    pixel_values_videos: float [sum_i N_i, 1176]; video_grid_thw: long [B, 3]; second_per_grid_ts: float [B].
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: torch.Tensor

    def to_model(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids.to(device),
            "attention_mask": self.attention_mask.to(device),
            "mm_token_type_ids": self.mm_token_type_ids.to(device),
            "pixel_values_videos": self.pixel_values_videos.to(device, dtype),
            "video_grid_thw": self.video_grid_thw.to(device),
            "second_per_grid_ts": self.second_per_grid_ts.to(device),
        }


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def build_batch(
    tokenizer, facts: VideoScore2Facts, videos: list[VideoInputs], prompts: list[str], answer: str = ""
) -> Batch:
    """The chat turn of each (video, prompt), then `answer` (tokenized on its own, as the assistant's
    message is in training), left-padded with the tokenizer's pad token."""
    video_id = tokenizer.convert_tokens_to_ids(facts.video_token)
    head = encode(tokenizer, facts.chat_head)
    answer_ids = encode(tokenizer, answer) if answer else []
    rows, types = [], []
    specials = list(tokenizer.added_tokens_encoder)
    for video, prompt in zip(videos, prompts):
        # A prompt is text: "<|im_end|>" in it must not end the turn, nor "<|video_pad|>" take a video slot.
        prompt = neutralize_special_tokens(prompt, specials)
        tail = encode(tokenizer, facts.chat_tail_text(prompt)) + answer_ids
        rows.append(head + [video_id] * video.num_tokens + tail)
        types.append([0] * len(head) + [VIDEO_TYPE] * video.num_tokens + [0] * len(tail))
    length = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    mm_types = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (row, kinds) in enumerate(zip(rows, types)):
        input_ids[i, length - len(row):] = torch.tensor(row)
        attention_mask[i, length - len(row):] = 1
        mm_types[i, length - len(row):] = torch.tensor(kinds)
    # vs2_inference.py passes fps=2.0 to the processor: temporal_patch_size / fps seconds per grid step.
    seconds = facts.temporal_patch_size / facts.fps
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        mm_token_type_ids=mm_types,
        pixel_values_videos=torch.cat([v.pixel_values for v in videos]),
        video_grid_thw=torch.tensor([v.grid_thw for v in videos], dtype=torch.long),
        second_per_grid_ts=torch.full((len(videos),), seconds),
    )
