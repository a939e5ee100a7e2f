"""The VideoScore architecture at full and at CPU size, and its FLOPs model: forward-pass FLOPs per
video by component, checked against torch's FlopCounterMode, and the GPUs' peak rates for MFU."""

from __future__ import annotations

import torch
from transformers import Idefics2Config
from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

from videoscore_reward import VideoScoreModel
from videoscore_reward.reward.checkpoints import FAMILIES
from videoscore_reward.reward.preprocess import ImageSettings

# The published checkpoints' image settings, from the family table.
_IMAGE_SETTINGS = ImageSettings.from_image_processor(
    Idefics2ImageProcessorPil(**FAMILIES["videoscore"].image_processor_kwargs())
)

# Mantis-8B-Idefics2 (the base of VideoScore): SigLIP-so400m vision tower, a perceiver resampler to
# 64 tokens per image, and Mistral-7B.
VIDEOSCORE_SIZES = dict(
    vision_config=dict(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        patch_size=14, image_size=980,
    ),
    perceiver_config=dict(
        hidden_size=4096, resampler_n_latents=64, resampler_depth=3, resampler_n_heads=16,
        resampler_head_dim=96, num_key_value_heads=4,
    ),
    text_config=dict(
        model_type="mistral", vocab_size=32003, hidden_size=4096, intermediate_size=14336,
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
        pad_token_id=0,
    ),
    image_token_id=32001,
)

# The same structure, small enough for a CPU (checks the FLOPs formula and the code path).
SCALED_DOWN_SIZES = dict(
    vision_config=dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, patch_size=14,
        image_size=980,
    ),
    perceiver_config=dict(
        hidden_size=48, resampler_n_latents=64, resampler_depth=2, resampler_n_heads=4, resampler_head_dim=12,
        num_key_value_heads=2,
    ),
    text_config=dict(
        model_type="mistral", vocab_size=32003, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768, pad_token_id=0,
    ),
    image_token_id=32001,
)

# Text tokens of the query around the image tokens. The template has about 1,170 characters; with
# Mistral's 32k SentencePiece vocabulary (about 4 characters a token) and a short prompt that is about
# 300. The tokenizer is not available offline, so this is an estimate (50 tokens either way changes
# the FLOPs at 16 frames by under 2%).
TEXT_TOKENS = 300

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, in TFLOP/s. The first name
# contained in torch.cuda.get_device_name() wins, so the more specific names come first.
PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.1,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.2,
}


def videoscore_config(sizes: dict = VIDEOSCORE_SIZES) -> Idefics2Config:
    """An Idefics2 config with VideoScore's 5-output head, from `VIDEOSCORE_SIZES` or `SCALED_DOWN_SIZES`."""
    return Idefics2Config(**{k: dict(v) if isinstance(v, dict) else v for k, v in sizes.items()}, num_labels=5)


def image_patches(config: Idefics2Config, image_size: int) -> int:
    """Vision tokens of one frame of image_size x image_size px, after the processor's resize rule."""
    height, width = _IMAGE_SETTINGS.output_size(image_size, image_size)
    patch = config.vision_config.patch_size
    return (height // patch) * (width // patch)


def flops_per_video(config: Idefics2Config, *, frames: int, image_size: int = 378, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """Forward-pass FLOPs for one video, by component (2 FLOPs per multiply-add; matmuls and the patch
    convolution only; norms, activations, softmax and rotary embeddings are left out).

    Per frame, with P vision tokens (P = (s // 14)^2 for s x s px after the resize rule):
      vision   2 P (3 p^2) d_v  +  L_v [2 P (4 d_v^2 + 2 d_v f_v) + 4 P^2 d_v]
      project  2 P (2 d_v f + f d)                       (gated MLP into the text width)
      resample D [2 n d (h q) + 2 (P + n) d (2 k q) + 4 n (P + n) h q + 2 n (h q) d + 2 n (3 d 4d)]
    Per video, with T = text_tokens + n * frames tokens:
      text     L [2 T d (d + 2 d_kv) + 2 T d^2 + 2 T (3 d f) + 4 T^2 d]  +  2 d * 5 (the score head)
    d_v, f_v, L_v, p: vision width, MLP width, layers, patch; n latents, D perceiver layers with h
    query heads, k key/value heads of q dims; d, f, L, d_kv: text width, MLP width, layers, key/value
    width. Attention counts all T^2 (and P^2) query-key pairs, as the PaLM MFU convention does and as
    SDPA computes with a padding mask; a causal kernel skips about half of the text term.
    """
    vision, perceiver, text = config.vision_config, config.perceiver_config, config.text_config
    P = image_patches(config, image_size)
    d_v, f_v, patch = vision.hidden_size, vision.intermediate_size, vision.patch_size
    d, f = text.hidden_size, text.intermediate_size
    n, hq, kq = perceiver.resampler_n_latents, perceiver.resampler_n_heads * perceiver.resampler_head_dim, perceiver.num_key_value_heads * perceiver.resampler_head_dim
    d_kv = text.num_key_value_heads * (d // text.num_attention_heads)
    T = text_tokens + n * frames

    vision_flops = 2 * P * 3 * patch**2 * d_v + vision.num_hidden_layers * (
        2 * P * (4 * d_v**2 + 2 * d_v * f_v) + 4 * P**2 * d_v
    )
    project_flops = 2 * P * (2 * d_v * f + f * d)
    resample_flops = perceiver.resampler_depth * (
        2 * n * d * hq + 2 * (P + n) * d * 2 * kq + 4 * n * (P + n) * hq + 2 * n * hq * d + 2 * n * 3 * d * 4 * d
    )
    text_flops = text.num_hidden_layers * (
        2 * T * d * (d + 2 * d_kv) + 2 * T * d * d + 2 * T * 3 * d * f + 4 * T**2 * d
    ) + 2 * d * config.num_labels
    return {
        "vision": float(frames * vision_flops),
        "projection": float(frames * project_flops),
        "resampler": float(frames * resample_flops),
        "text": float(text_flops),
    }


def build_model(config: Idefics2Config, *, device: str | torch.device, dtype: torch.dtype, attn_implementation: str = "sdpa") -> VideoScoreModel:
    """A `VideoScoreModel` with random weights, created directly on `device` (no checkpoint needed)."""
    with torch.device(device):
        model = VideoScoreModel._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    return model.eval().requires_grad_(False)


def random_inputs(config: Idefics2Config, *, batch: int, frames: int, image_size: int, text_tokens: int, device, dtype) -> dict[str, torch.Tensor]:
    """Model inputs of VideoScore's shape: `text_tokens` random text tokens then 64 image tokens per
    frame; random pixels for image_size x image_size px frames after the resize rule."""
    generator = torch.Generator().manual_seed(0)
    height, width = _IMAGE_SETTINGS.output_size(image_size, image_size)
    latents = config.perceiver_config.resampler_n_latents
    text = torch.randint(3, config.image_token_id, (batch, text_tokens), generator=generator)
    text[:, 0] = 1  # BOS
    input_ids = torch.cat([text, torch.full((batch, latents * frames), config.image_token_id)], dim=1)
    return dict(
        input_ids=input_ids.to(device),
        attention_mask=torch.ones_like(input_ids, device=device),
        pixel_values=torch.randn(batch, frames, 3, height, width, generator=generator).to(device, dtype),
        pixel_attention_mask=torch.ones(batch, frames, height, width, dtype=torch.bool, device=device),
    )


def count_flops(model: VideoScoreModel, inputs: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass as torch's FlopCounterMode counts them (matmuls, convolutions, fused
    attention kernels; CPU SDPA is not counted, so use attn_implementation="eager" there)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(**inputs)
    return counter.get_total_flops()


def check_flops_formula(*, frames: int = 2, batch: int = 2, image_size: int = 378, text_tokens: int = 40) -> dict:
    """`flops_per_video` against torch's FlopCounterMode on the scaled-down config on CPU."""
    config = videoscore_config(SCALED_DOWN_SIZES)
    model = build_model(config, device="cpu", dtype=torch.float32, attn_implementation="eager")
    inputs = random_inputs(config, batch=batch, frames=frames, image_size=image_size, text_tokens=text_tokens, device="cpu", dtype=torch.float32)
    counted = count_flops(model, inputs)
    formula = batch * sum(flops_per_video(config, frames=frames, image_size=image_size, text_tokens=text_tokens).values())
    return dict(formula=formula, counted=counted, ratio=formula / counted)


def peak_bf16_tflops(device_name: str) -> float | None:
    return next((tflops for name, tflops in PEAK_BF16_TFLOPS.items() if name in device_name), None)
