"""The tiny random VideoScore checkpoint behind `from_pretrained("tiny-random")`, for offline tests
and smoke runs (also `videoscore_reward.testing.tiny_checkpoint`).

The scores of such a checkpoint are meaningless; the files, the code path and the tensor shapes are
those of the real checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Idefics2Config, Idefics2Processor, PreTrainedTokenizerFast
from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

from .checkpoints import FAMILIES, TINY_RANDOM_MARKER
from .model import VideoScoreModel
from .prompt import query_template

_FAMILY = FAMILIES["videoscore"]
# Ten times transformers' default: with 0.02 a 2-layer model gives nearly the same scores for any
# input, and tests could not tell videos, prompts or their order apart.
_INIT_RANGE = 0.2


def _tiny_tokenizer() -> PreTrainedTokenizerFast:
    # A byte-level BPE trained on the query template: every prompt tokenizes without unknowns,
    # and training on fixed text is deterministic.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([query_template()] * 4, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
        padding_side="right",
        # As the real (Mistral) tokenizer: no token_type_ids, which the original model does not take.
        model_input_names=["input_ids", "attention_mask"],
    )


def tiny_checkpoint(path: str | os.PathLike, *, num_frames: int = 16, seed: int = 0) -> Path:
    """Write a tiny random VideoScore checkpoint to `path` and return the path.

    The folder holds what a real checkpoint holds, in the original layout: `config.json` (an
    Idefics2 config with architectures `Idefics2ForSequenceClassification`), `model.safetensors`
    with `model.*` and `score.*` keys, and the processor and tokenizer files. The processor has the
    real settings (shortest edge 378, longest edge 980, no image splitting, mean/std 0.5, 64 tokens
    per image); the networks are a few hundred kB. The same `seed` writes the same weights; the
    global torch RNG is left as it was. `num_frames` is recorded in the config as the frame count.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = _tiny_tokenizer()
    processor = Idefics2Processor(
        image_processor=Idefics2ImageProcessorPil(**_FAMILY.image_processor_kwargs()),
        tokenizer=tokenizer,
        image_seq_len=_FAMILY.image_seq_len,
    )
    hidden = 32
    config = Idefics2Config(
        text_config=dict(
            model_type="mistral",
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=8192,
            pad_token_id=tokenizer.pad_token_id,
            initializer_range=_INIT_RANGE,
        ),
        vision_config=dict(
            hidden_size=hidden,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=980,
            patch_size=14,
            initializer_range=_INIT_RANGE,
        ),
        perceiver_config=dict(
            hidden_size=hidden,
            resampler_n_latents=_FAMILY.image_seq_len,
            resampler_depth=1,
            resampler_n_heads=2,
            resampler_head_dim=8,
            num_key_value_heads=1,
            initializer_range=_INIT_RANGE,
        ),
        image_token_id=processor.image_token_id,
        num_labels=len(_FAMILY.aspects),
        initializer_range=_INIT_RANGE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoScoreModel(config)
        # Random init puts every score near 0; centre them in the 1-4 range so tiny-model
        # outputs look like scores and range checks downstream are exercised.
        torch.nn.init.constant_(model.score.bias, 2.5)
    model.save_pretrained(path)
    processor.save_pretrained(path)

    config_file = path / "config.json"
    saved = json.loads(config_file.read_text())
    saved["architectures"] = ["Idefics2ForSequenceClassification"]
    saved["num_frames"] = num_frames
    saved[TINY_RANDOM_MARKER] = True
    config_file.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return path
