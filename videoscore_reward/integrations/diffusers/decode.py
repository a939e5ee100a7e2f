"""Latents to frames exactly as each diffusers video pipeline decodes them after its denoising loop.

Each function repeats the decoding lines of one pipeline's `__call__` (which diffusers does not
expose as a method), so that a clean estimate decoded here is the video the pipeline would have
returned for those latents, and the final latents decode to exactly the pipeline's output.
"""

from __future__ import annotations

import torch
from diffusers.utils.torch_utils import get_module_execution_device

FAMILIES: dict[str, tuple[str, ...]] = {
    "animatediff": ("AnimateDiffPipeline", "AnimateDiffSDXLPipeline"),
    "wan": ("WanPipeline", "WanImageToVideoPipeline"),
    "cogvideox": ("CogVideoXPipeline",),
    "ltx": ("LTXPipeline",),
    "hunyuan_video": ("HunyuanVideoPipeline",),
}
"""Pipeline classes (and their subclasses) whose decoding is known, by family."""


def pipeline_family(pipeline) -> str:
    """The family of `pipeline` (a key of `FAMILIES`); a ValueError naming the supported pipelines otherwise."""
    names = {cls.__name__ for cls in type(pipeline).__mro__}
    for family, classes in FAMILIES.items():
        if names.intersection(classes):
            if family == "cogvideox" and getattr(pipeline.transformer.config, "patch_size_t", None) is not None:
                raise ValueError(
                    "CogVideoX 1.5 pads latent frames that only its __call__ knows how many of: the step callback "
                    "supports CogVideoX 1.0 (2b/5b). best_of_n and score_pipeline_output work with 1.5."
                )
            if family == "wan" and pipeline.config.get("expand_timesteps", False):
                raise ValueError("Wan 2.2 TI2V (expand_timesteps=True) is not supported by the step callback.")
            return family
    supported = ", ".join(name for classes in FAMILIES.values() for name in classes)
    raise ValueError(f"Cannot tell how {type(pipeline).__name__} decodes its latents: supported pipelines are {supported}.")


@torch.no_grad()
def decode_video(pipeline, latents: torch.Tensor, *, prompt_embeds: torch.Tensor | None = None,
                 latent_grid: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Decode `latents` in the layout of the pipeline's denoising loop (what `callback_on_step_end`
    receives as "latents") to float frames [B, F, C, H, W] in [0, 1], as `output_type="pt"` returns.

    prompt_embeds: the loop's prompt embeddings (LTX casts latents to their dtype before decoding).
    latent_grid: (frames, height, width) of LTX's packed latent tokens.
    """
    family = pipeline_family(pipeline)
    if family == "animatediff":
        video = _decode_animatediff(pipeline, latents)
    elif family == "wan":
        video = _decode_wan(pipeline, latents)
    elif family == "cogvideox":
        video = pipeline.decode_latents(latents)
    elif family == "ltx":
        video = _decode_ltx(pipeline, latents, prompt_embeds, latent_grid)
    else:
        vae = pipeline.vae
        video = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return pipeline.video_processor.postprocess_video(video, output_type="pt")


def _decode_animatediff(pipeline, latents: torch.Tensor) -> torch.Tensor:
    vae = pipeline.vae
    # AnimateDiffSDXLPipeline decodes in float32 with a float16 VAE that asks for it, then casts back.
    upcast = hasattr(pipeline, "upcast_vae") and vae.dtype == torch.float16 and vae.config.get("force_upcast", False)
    if not upcast:
        return pipeline.decode_latents(latents)  # SD1.5's decode_chunk_size only splits the same per-frame work
    pipeline.upcast_vae()
    try:
        return pipeline.decode_latents(latents.to(next(iter(vae.post_quant_conv.parameters())).dtype))
    finally:
        vae.to(dtype=torch.float16)


def _decode_wan(pipeline, latents: torch.Tensor) -> torch.Tensor:
    vae = pipeline.vae
    latents = latents.to(get_module_execution_device(vae), dtype=vae.dtype)
    shape = (1, vae.config.z_dim, 1, 1, 1)
    latents_mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
    latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
    return vae.decode(latents / latents_std + latents_mean, return_dict=False)[0]


def _decode_ltx(pipeline, latents, prompt_embeds, latent_grid) -> torch.Tensor:
    if latent_grid is None:
        raise ValueError("LTX latents are packed tokens: decoding needs their (frames, height, width) grid.")
    vae = pipeline.vae
    latents = pipeline._unpack_latents(latents, *latent_grid, pipeline.transformer_spatial_patch_size,
                                       pipeline.transformer_temporal_patch_size)
    latents = pipeline._denormalize_latents(latents, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    if prompt_embeds is not None:
        latents = latents.to(prompt_embeds.dtype)
    timestep = None
    if vae.config.timestep_conditioning:
        # The pipeline's defaults, decode_timestep=0 and decode_noise_scale=decode_timestep, add no noise.
        timestep = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
    return vae.decode(latents.to(vae.dtype), timestep, return_dict=False)[0]
