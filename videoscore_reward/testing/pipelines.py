"""Tiny random diffusers video pipelines, built offline from their own component classes.

Each builder makes what diffusers' own tests make in `get_dummy_components`: every component of the
real pipeline class with a tiny config (a few thousand parameters), seeded, float32, with tokenizers
written locally (every byte is a token, so any text tokenizes). A call with `TINY_CALL_KWARGS[name]`
runs in about a second on a CPU. The videos are noise; the code paths, shapes and schedulers are the
real ones.

    from videoscore_reward.testing.pipelines import tiny_pipeline, TINY_CALL_KWARGS
    pipe = tiny_pipeline("wan")
    frames = pipe("a cat", output_type="pt", **TINY_CALL_KWARGS["wan"]).frames   # [1, 5, 3, 16, 16]
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    LlamaConfig,
    LlamaModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

__all__ = [
    "TINY_CALL_KWARGS",
    "tiny_animatediff_pipeline",
    "tiny_animatediff_sdxl_pipeline",
    "tiny_cogvideox_pipeline",
    "tiny_hunyuan_video_pipeline",
    "tiny_ltx_pipeline",
    "tiny_pipeline",
    "tiny_wan22_pipeline",
    "tiny_wan_i2v_pipeline",
    "tiny_wan_pipeline",
]


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable ASCII/Latin-1 kept as is)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + i) for i in range(len(shifted))]


def _tiny_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    # Every byte as a token and as a word end: any text tokenizes, character by character.
    symbols = _byte_symbols()
    vocab = {token: i for i, token in enumerate(["<|startoftext|>", "<|endoftext|>", *symbols, *[s + "</w>" for s in symbols]])}
    folder = Path(tempfile.mkdtemp(prefix="tiny-clip-tokenizer-"))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=model_max_length)


def _tiny_byte_tokenizer(*, bos: bool) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer with no merges: 3 special tokens + 256 bytes (vocabulary 259).

    bos=False appends "</s>" as T5 does; bos=True prepends "<s>" as Llama does.
    """
    specials = ["<pad>", "</s>", "<s>"]
    vocab = {token: i for i, token in enumerate([*specials, *_byte_symbols()])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    single = "<s> $A" if bos else "$A </s>"
    tokenizer.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", bos_token="<s>",
                                   unk_token="<pad>", model_max_length=512)


def _tiny_t5(d_model: int) -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=259, d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1))


def _tiny_clip_text(hidden_size: int = 16, projection: bool = False, max_positions: int = 77):
    config = CLIPTextConfig(hidden_size=hidden_size, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                            vocab_size=1024, max_position_embeddings=max_positions, bos_token_id=0, eos_token_id=1,
                            pad_token_id=1, projection_dim=hidden_size)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _seeded(build: Callable[[], object], seed: int):
    # Same seed, same weights; the caller's global RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = build()
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # as from_pretrained leaves them: no dropout
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tiny_sd_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=2,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)


def tiny_animatediff_pipeline(seed: int = 0):
    """AnimateDiff on SD1.5 (UNet2DConditionModel + MotionAdapter, CLIP text encoder), DDIM."""
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    def build():
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=16, norm_num_groups=2, attention_head_dim=4,
        )
        adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                                motion_num_attention_heads=2, motion_max_seq_length=32)
        return AnimateDiffPipeline(vae=_tiny_sd_vae(), text_encoder=_tiny_clip_text(), tokenizer=_tiny_clip_tokenizer(),
                                   unet=unet, motion_adapter=adapter,
                                   scheduler=DDIMScheduler(beta_schedule="linear", clip_sample=False, steps_offset=1))

    return _seeded(build, seed)


def tiny_animatediff_sdxl_pipeline(seed: int = 0):
    """AnimateDiff on SDXL (two CLIP text encoders, text_time added conditioning), DDIM."""
    from diffusers import AnimateDiffSDXLPipeline, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    def build():
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=4, transformer_layers_per_block=1,
            projection_class_embeddings_input_dim=6 * 4 + 16,  # six time ids + text_encoder_2's pooled embedding
            cross_attention_dim=32, norm_num_groups=2,  # both text encoders' hidden states, concatenated
        )
        adapter = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=2,
                                motion_num_attention_heads=2, use_motion_mid_block=False, motion_max_seq_length=32)
        return AnimateDiffSDXLPipeline(
            vae=_tiny_sd_vae(), text_encoder=_tiny_clip_text(), tokenizer=_tiny_clip_tokenizer(),
            text_encoder_2=_tiny_clip_text(projection=True), tokenizer_2=_tiny_clip_tokenizer(), unet=unet,
            motion_adapter=adapter, scheduler=DDIMScheduler(beta_schedule="linear", clip_sample=False, steps_offset=1),
        )

    return _seeded(build, seed)


def _tiny_wan_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _tiny_wan_transformer(in_channels: int = 16, image_dim: int | None = None):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                 in_channels=in_channels, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                 num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                 rope_max_seq_len=32, image_dim=image_dim)


def tiny_wan_pipeline(seed: int = 0):
    """Wan 2.1 text-to-video (one WanTransformer3DModel, UMT5-style encoder), FlowMatchEuler with shift 3."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    def build():
        return WanPipeline(tokenizer=_tiny_byte_tokenizer(bos=False), text_encoder=_tiny_t5(32), vae=_tiny_wan_vae(),
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=_tiny_wan_transformer())

    return _seeded(build, seed)


def tiny_wan22_pipeline(seed: int = 0, boundary_ratio: float = 0.875):
    """Wan 2.2 text-to-video A14B layout: a high-noise `transformer` for timesteps >= boundary_ratio * 1000
    and a low-noise `transformer_2` below it; UniPC with flow prediction, as Wan 2.2 ships."""
    from diffusers import UniPCMultistepScheduler, WanPipeline

    def build():
        scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
        return WanPipeline(tokenizer=_tiny_byte_tokenizer(bos=False), text_encoder=_tiny_t5(32), vae=_tiny_wan_vae(),
                           scheduler=scheduler, transformer=_tiny_wan_transformer(),
                           transformer_2=_tiny_wan_transformer(), boundary_ratio=boundary_ratio)

    return _seeded(build, seed)


def tiny_wan_i2v_pipeline(seed: int = 0):
    """Wan 2.1 image-to-video (CLIP vision encoder, 36 input channels: latents + mask + image latents)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    def build():
        image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            intermediate_size=16, patch_size=1))
        return WanImageToVideoPipeline(
            tokenizer=_tiny_byte_tokenizer(bos=False), text_encoder=_tiny_t5(32), vae=_tiny_wan_vae(),
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            transformer=_tiny_wan_transformer(in_channels=36, image_dim=4),
            image_encoder=image_encoder, image_processor=CLIPImageProcessor(crop_size=32, size=32),
        )

    return _seeded(build, seed)


def tiny_cogvideox_pipeline(seed: int = 0):
    """CogVideoX (2b layout: no rotary embeddings), CogVideoXDDIMScheduler with v-prediction as it ships."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    def build():
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
            text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=16,
        )
        vae = AutoencoderKLCogVideoX(
            in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
            layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
        )
        scheduler = CogVideoXDDIMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                           timestep_spacing="trailing", beta_schedule="scaled_linear",
                                           clip_sample=False, set_alpha_to_one=True, snr_shift_scale=3.0)
        return CogVideoXPipeline(tokenizer=_tiny_byte_tokenizer(bos=False), text_encoder=_tiny_t5(32), vae=vae,
                                 transformer=transformer, scheduler=scheduler)

    return _seeded(build, seed)


def tiny_ltx_pipeline(seed: int = 0):
    """LTX-Video (packed latent tokens, normalized latents), FlowMatchEuler as it ships."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline, LTXVideoTransformer3DModel

    def build():
        transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                            num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                            num_layers=1, caption_channels=32)
        vae = AutoencoderKLLTXVideo(
            latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, False, False), decoder_spatio_temporal_scaling=(True, True, False, False),
            patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False,
        )
        vae.use_framewise_encoding = False
        vae.use_framewise_decoding = False
        return LTXPipeline(tokenizer=_tiny_byte_tokenizer(bos=False), text_encoder=_tiny_t5(32), vae=vae,
                           transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler())

    return _seeded(build, seed)


def tiny_hunyuan_video_pipeline(seed: int = 0):
    """HunyuanVideo (Llama text encoder with the default prompt template, CLIP pooled embedding, guidance
    embedding), FlowMatchEuler with shift 7 as it ships."""
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )

    def build():
        transformer = HunyuanVideoTransformer3DModel(
            in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
            num_single_layers=1, num_refiner_layers=1, patch_size=1, patch_size_t=1, guidance_embeds=True,
            text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4),
        )
        vae = AutoencoderKLHunyuanVideo(
            in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
            up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
            act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
            temporal_compression_ratio=4, mid_block_add_attention=True,
        )
        llama = LlamaModel(LlamaConfig(vocab_size=259, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                       num_key_value_heads=2, num_hidden_layers=3, max_position_embeddings=1024,
                                       bos_token_id=2, eos_token_id=1, pad_token_id=0))
        return HunyuanVideoPipeline(
            text_encoder=llama, tokenizer=_tiny_byte_tokenizer(bos=True), transformer=transformer, vae=vae,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
            text_encoder_2=_tiny_clip_text(hidden_size=8), tokenizer_2=_tiny_clip_tokenizer(),
        )

    return _seeded(build, seed)


_BUILDERS: dict[str, Callable] = {
    "animatediff": tiny_animatediff_pipeline,
    "animatediff_sdxl": tiny_animatediff_sdxl_pipeline,
    "wan": tiny_wan_pipeline,
    "wan22": tiny_wan22_pipeline,
    "wan_i2v": tiny_wan_i2v_pipeline,
    "cogvideox": tiny_cogvideox_pipeline,
    "ltx": tiny_ltx_pipeline,
    "hunyuan_video": tiny_hunyuan_video_pipeline,
}

TINY_CALL_KWARGS: dict[str, dict] = {
    "animatediff": dict(num_frames=4, height=32, width=32, num_inference_steps=4),
    "animatediff_sdxl": dict(num_frames=4, height=32, width=32, num_inference_steps=4),
    "wan": dict(num_frames=5, height=16, width=16, num_inference_steps=4, max_sequence_length=16),
    "wan22": dict(num_frames=5, height=16, width=16, num_inference_steps=4, max_sequence_length=16),
    "wan_i2v": dict(num_frames=5, height=16, width=16, num_inference_steps=4, max_sequence_length=16),
    "cogvideox": dict(num_frames=9, height=16, width=16, num_inference_steps=4, max_sequence_length=16),
    "ltx": dict(num_frames=9, height=32, width=32, num_inference_steps=4, max_sequence_length=16),
    "hunyuan_video": dict(num_frames=5, height=16, width=16, num_inference_steps=4, max_sequence_length=16),
}
"""Per pipeline name: small call arguments (frames, size, steps, text length) for a ~1 s run on a CPU."""


def tiny_pipeline(name: str, seed: int = 0):
    """The tiny pipeline called `name`: one of the keys of `TINY_CALL_KWARGS`."""
    if name not in _BUILDERS:
        raise ValueError(f"Unknown tiny pipeline {name!r}: expected one of {sorted(_BUILDERS)}.")
    return _BUILDERS[name](seed=seed)
