"""VideoScore's network: transformers' Idefics2Model with a 5-output regression head."""

from __future__ import annotations

import torch
from torch import nn
from transformers import Idefics2Config
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.idefics2.modeling_idefics2 import Idefics2Model, Idefics2PreTrainedModel

from .aspects import ASPECTS


class VideoScoreModel(Idefics2PreTrainedModel):
    """Idefics2 with a linear head read at the last real token, as in the VideoScore checkpoints.

    The parameter names match the checkpoints (`model.*` for Idefics2, `score.*` for the head), so
    `VideoScoreModel.from_pretrained("TIGER-Lab/VideoScore-v1.1")` loads them without missing or
    unexpected keys. The original class is mantis-vl's `Idefics2ForSequenceClassification`, which
    pools at "first pad token - 1"; for right padding (and no padding) that is the last position
    whose attention mask is 1, which is what we take, so left padding works too.
    """

    config_class = Idefics2Config
    base_model_prefix = "model"

    def __init__(self, config: Idefics2Config):
        super().__init__(config)
        self.model = Idefics2Model(config)
        self.score = nn.Linear(config.text_config.hidden_size, len(ASPECTS), bias=True)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        pixel_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Aspect scores of a batch.

        input_ids, attention_mask: [B, L] (padding on either side).
        pixel_values: float [B, N_images, 3, H, W], normalized; all-zero images are padding.
        pixel_attention_mask: [B, N_images, H, W], 1 on real pixels.
        Returns `logits` float [B, 5] in `ASPECTS` order, on VideoScore's 1-4 scale.
        """
        hidden = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            pixel_attention_mask=pixel_attention_mask,
            use_cache=False,
            **kwargs,
        ).last_hidden_state
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.bool() * positions).argmax(dim=-1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]
        return SequenceClassifierOutput(logits=self.score(pooled))
