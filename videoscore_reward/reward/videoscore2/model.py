"""VideoScore2's network: transformers' Qwen2.5-VL with the 3-D positions of transformers 4.x."""

from __future__ import annotations

import torch
from transformers import Qwen2_5_VLForConditionalGeneration
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel


def positions_4x(
    mm_token_type_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    video_grid_thw: torch.Tensor,
    *,
    spatial_merge_size: int,
    time_step: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """M-RoPE positions as transformers 4.50-4.53 build them for one video per sequence.

    Text runs count up by 1 on all three axes; a video of (t, h, w) merged cells starts at s and takes
    (s + time_step * i, s + row, s + col); the text after a video starts at max(all positions so far) + 1.
    (5.x continues at s + max(h, w) instead, which shifts the whole query when time_step * (t - 1) > max(h, w).)
    VideoScore2 was trained on transformers 4.50 and evaluated on 4.53.2, so these are its positions.

    mm_token_type_ids, attention_mask: [B, L] (0 text / 2 video; 1 real / 0 padding, either side).
    video_grid_thw: [B, 3] in patches. Returns positions long [3, B, L] (padding at 1) and
    deltas long [B, 1] (position of the next token minus its index among the real tokens).
    """
    batch, length = attention_mask.shape
    positions = torch.ones(3, batch, length, dtype=torch.long, device=attention_mask.device)
    deltas = []
    for row in range(batch):
        real = attention_mask[row].bool()
        types = mm_token_type_ids[row][real]
        pieces, start, index = [], 0, 0
        grids = iter(video_grid_thw[row : row + 1].tolist())
        while index < types.numel():
            kind = int(types[index])
            end = index
            while end < types.numel() and int(types[end]) == kind:
                end += 1
            if kind == 0:
                pieces.append(torch.arange(end - index).expand(3, -1) + start)
            else:
                t, h, w = next(grids)
                h, w = h // spatial_merge_size, w // spatial_merge_size
                grid = torch.stack(
                    torch.meshgrid(torch.arange(t) * time_step, torch.arange(h), torch.arange(w), indexing="ij")
                ).reshape(3, -1)
                pieces.append(grid + start)
            start = int(pieces[-1].max()) + 1
            index = end
        merged = torch.cat(pieces, dim=1)
        positions[:, row, real] = merged.to(positions.device)
        deltas.append(start - int(real.sum()))
    return positions, torch.tensor(deltas, device=attention_mask.device).unsqueeze(1)


class _Model4xPositions(Qwen2_5_VLModel):
    def get_rope_index(self, input_ids, mm_token_type_ids, image_grid_thw=None, video_grid_thw=None,
                       second_per_grid_ts=None, attention_mask=None, **kwargs):
        if image_grid_thw is not None:
            raise ValueError("VideoScore2 takes one video per sequence and no images.")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        seconds = 1.0 if second_per_grid_ts is None else float(second_per_grid_ts.flatten()[0])
        # 4.x casts seconds-per-grid to an integer before scaling (1.0 at VideoScore2's 2 fps).
        time_step = int(seconds) * self.config.vision_config.tokens_per_second
        return positions_4x(
            mm_token_type_ids, attention_mask, video_grid_thw,
            spatial_merge_size=self.config.vision_config.spatial_merge_size, time_step=time_step,
        )


class VideoScore2Model(Qwen2_5_VLForConditionalGeneration):
    """`Qwen2_5_VLForConditionalGeneration` whose 3-D positions follow transformers 4.x (see `positions_4x`).

    Same parameters and file layout as the checkpoint (`visual.*`, `model.*`, `lm_head`), so
    `VideoScore2Model.from_pretrained("TIGER-Lab/VideoScore2")` loads it as is; forward and generate
    take `mm_token_type_ids` (2 on video tokens), without which 5.x falls back to 1-D positions.
    """

    def __init__(self, config):
        super().__init__(config)
        self.model = _Model4xPositions(config)
        self.post_init()


# transformers renames the checkpoint's 4.x keys (`visual.*`, `model.*`) for its own classes only; a
# subclass outside transformers must ask for the same renaming, or the weights would not load.
register_checkpoint_conversion_mapping(
    VideoScore2Model.__name__,
    get_checkpoint_conversion_mapping(Qwen2_5_VLForConditionalGeneration.__name__),
    overwrite=True,
)
