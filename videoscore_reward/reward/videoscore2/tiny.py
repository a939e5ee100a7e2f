"""A tiny random VideoScore2 checkpoint (Qwen2.5-VL layout), for offline tests and smoke runs (behind
`from_pretrained("tiny-random-videoscore2")`; also `videoscore_reward.testing.videoscore2`).

Its scores are meaningless; its files, key names, config layout, special tokens and processor
settings are those of the released checkpoint (written by transformers 4.x), so loading takes the
user's path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig

from ..checkpoints import TINY_RANDOM_MARKER
from .facts import VIDEOSCORE2, query_template
from .model import VideoScore2Model

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
# Qwen2's pre-tokenizer split: digits stand alone, so a score is always one token, as in the real tokenizer.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen2.5-VL's chat layout for what VideoScore2 sends (written for this test checkpoint).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_INIT_RANGE = 0.2  # as the v1 tiny checkpoint: large enough that inputs visibly change the outputs


def _tiny_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    facts = VIDEOSCORE2
    corpus = [query_template(), facts.chat_head, facts.chat_tail, facts.answer_prefix, *facts.score_labels]
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        padding_side="left", model_input_names=["input_ids", "attention_mask"],
    )


def tiny_videoscore2_checkpoint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Write a tiny random VideoScore2 checkpoint to `path` and return the path.

    config.json in the 4.x layout of the release (text settings at the top level, `rope_scaling` with
    `mrope_section`, `vision_config`), model.safetensors with `visual.*` / `model.*` / `lm_head` keys,
    the tokenizer with Qwen's special tokens and digit splitting, preprocessor_config.json and the
    chat template. Same `seed`, same weights; the global torch RNG is left as it was.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer()
    token = tokenizer.convert_tokens_to_ids
    hidden, heads = 64, 4
    mrope_section = [2, 3, 3]  # sums to head_dim / 2 = 8, as [16, 24, 24] does for the 7B's 128
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=heads, num_key_value_heads=2, max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section},
            initializer_range=_INIT_RANGE, bos_token_id=token("<|endoftext|>"), eos_token_id=token("<|im_end|>"),
            pad_token_id=token("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
            patch_size=VIDEOSCORE2.patch_size, temporal_patch_size=VIDEOSCORE2.temporal_patch_size,
            spatial_merge_size=VIDEOSCORE2.merge_size, tokens_per_second=2, window_size=112,
            fullatt_block_indexes=[1], initializer_range=_INIT_RANGE,
        ),
        image_token_id=token("<|image_pad|>"), video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoScore2Model(config)
    model.generation_config.eos_token_id = [token("<|im_end|>"), token("<|endoftext|>")]
    model.generation_config.pad_token_id = token("<|endoftext|>")
    model.save_pretrained(path)  # in the checkpoint's 4.x key names (the registered renaming, reversed)
    tokenizer.save_pretrained(path)
    settings_file = path / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text())
    # The release names Qwen2's tokenizer class, which both transformers 4.x and 5.x load from tokenizer.json.
    settings.update(tokenizer_class="Qwen2Tokenizer", bos_token=None, unk_token=None, errors="replace",
                    add_prefix_space=False, split_special_tokens=False)
    settings.pop("backend", None)
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    _write_4x_config(path, config, hidden, heads, mrope_section, tokenizer)
    facts = VIDEOSCORE2
    (path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "do_convert_rgb": True, "image_mean": list(facts.image_mean), "image_std": list(facts.image_std),
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": facts.patch_size,
        "temporal_patch_size": facts.temporal_patch_size, "merge_size": facts.merge_size, "resample": 3,
    }, indent=2) + "\n")
    (path / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n")
    return path


def _write_4x_config(path: Path, config: Qwen2_5_VLConfig, hidden: int, heads: int, mrope_section: list[int],
                     tokenizer) -> None:
    """Rewrite config.json as transformers 4.50 wrote the release: flat text settings, `rope_scaling`."""
    text = config.text_config
    vision = {k: v for k, v in config.vision_config.to_dict().items()
              if k in ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
                       "temporal_patch_size", "spatial_merge_size", "tokens_per_second", "window_size",
                       "fullatt_block_indexes", "in_chans", "hidden_act", "initializer_range")}
    vision["in_chans"] = 3
    vision["model_type"] = "qwen2_5_vl"
    saved = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "torch_dtype": "float32",
        "transformers_version": "4.50.0",
        "vocab_size": text.vocab_size, "hidden_size": hidden, "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": heads,
        "num_key_value_heads": text.num_key_value_heads, "hidden_act": "silu", "rms_norm_eps": text.rms_norm_eps,
        "max_position_embeddings": text.max_position_embeddings, "max_window_layers": text.num_hidden_layers,
        "use_sliding_window": False, "sliding_window": 32768, "attention_dropout": 0.0, "use_cache": True,
        "tie_word_embeddings": False, "initializer_range": _INIT_RANGE,
        "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": mrope_section},
        "bos_token_id": text.bos_token_id, "eos_token_id": text.eos_token_id,
        "image_token_id": config.image_token_id, "video_token_id": config.video_token_id,
        "vision_start_token_id": config.vision_start_token_id, "vision_end_token_id": config.vision_end_token_id,
        "vision_config": vision,
        TINY_RANDOM_MARKER: True,
    }
    (path / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
