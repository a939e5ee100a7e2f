"""A tiny random AnimateDiff pipeline built offline from configs (CPU, float32, seconds per run)."""

import json
import tempfile
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable ASCII/Latin-1 kept as is)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + i) for i in range(len(shifted))]


def _tiny_clip_tokenizer() -> CLIPTokenizer:
    # Every byte as a token and as a word end: any text tokenizes, character by character.
    symbols = _byte_symbols()
    vocab = {token: i for i, token in enumerate(["<|startoftext|>", "<|endoftext|>", *symbols, *[s + "</w>" for s in symbols]])}
    folder = Path(tempfile.mkdtemp(prefix="tiny-clip-tokenizer-"))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


def tiny_animatediff_pipeline(seed: int = 0) -> AnimateDiffPipeline:
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=2, attention_head_dim=4,
    )
    adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=2, motion_max_seq_length=32)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                                num_hidden_layers=1, vocab_size=1024, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
                                                projection_dim=16))
    scheduler = DDIMScheduler(beta_schedule="linear", clip_sample=False, steps_offset=1)
    pipe = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=_tiny_clip_tokenizer(), unet=unet,
                               motion_adapter=adapter, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe
