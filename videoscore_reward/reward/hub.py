"""Where a checkpoint loads from, decided at once (without a network the Hub client retries for 25-60 s
before it gives up, so reachability is probed first and a cached copy is used when the Hub is away), and
the loading that every model family shares."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlsplit

import torch
from huggingface_hub import constants, snapshot_download

from .base import default_device

_PROBE_TIMEOUT_S = 3.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _offline() -> bool:
    # The constant is read when huggingface_hub is imported; the variable may be set later.
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within 3 s (cached for the process).

    Behind a proxy a direct connection says nothing, so the Hub is taken as reachable there.
    """
    if _offline():
        return False
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def locate_checkpoint(name: str) -> str:
    """`name` when it is a local folder or the Hub answers; else the folder of its cached snapshot.

    Raises OSError with one line (naming `hf download` and the offline "tiny-random" model) when the
    Hub cannot be reached and the checkpoint is not in the local Hugging Face cache.
    """
    if os.path.isdir(name) or hub_reachable():
        return name
    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure here means "not cached"; the message says what to do
        where = "HF_HUB_OFFLINE=1 is set" if _offline() else f"{constants.ENDPOINT} cannot be reached"
        raise OSError(
            f"Cannot load {name!r}: it is not a local folder, {where}, and it is not in the local Hugging Face Hub cache. "
            f"Download it where there is a network (`hf download {name} --local-dir DIR`) "
            f"and pass DIR, or try things offline with the tiny random model \"tiny-random\" "
            f"(`--model tiny-random` on the command line)."
        ) from None


def load_pretrained(
    model_class,
    processor_class,
    name: str,
    *,
    device: str | torch.device | None,
    dtype: torch.dtype | None,
    attn_implementation: str,
    family: str,
    expected_weights: str,
):
    """Load a checkpoint's model and processor the way every family loads: located first (see
    `locate_checkpoint`), weights checked key for key, the model in eval mode without gradients.

    device: default accelerate's device for this process; dtype: default bfloat16 on CUDA, float32 elsewhere.
    family / expected_weights: name the family and its weights in the errors.
    Returns (model, processor, the folder or hub id it loaded from).
    """
    device = torch.device(device) if device is not None else default_device()
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    name = locate_checkpoint(name)
    try:
        model, info = model_class.from_pretrained(
            name, dtype=dtype, attn_implementation=attn_implementation, output_loading_info=True
        )
        processor = processor_class.from_pretrained(name)
    except OSError as error:
        if os.path.isdir(name):
            raise OSError(f"{name} is a folder but not a loadable {family} checkpoint: {error}") from None
        raise OSError(f"Cannot load {name!r} from the Hugging Face Hub: {error}") from None
    missing = sorted(info["missing_keys"])
    if missing:
        raise ValueError(
            f"{name} is not a {family} checkpoint: weights missing for {missing[:5]}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + f". Expected {expected_weights}."
        )
    model.to(device).eval().requires_grad_(False)
    return model, processor, name
