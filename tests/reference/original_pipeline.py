"""VideoScore's original scoring path, run by the tests in a separate environment.

This is the pipeline of the original VideoScore inference example: PyAV decoding with the header
frame count and `np.arange(0, N, N / F).astype(int)` sampling, PIL frames, the Idefics2 processor of
transformers 4.x, and mantis-vl's `Idefics2ForSequenceClassification`. It needs transformers 4.44 and
mantis-vl, which cannot live next to our transformers 5, so the tests run it with another Python
(see conftest.py) and read the scores back as JSON.

Usage: python original_pipeline.py CHECKPOINT NUM_FRAMES TEMPLATE_FILE OUT_JSON VIDEO::PROMPT ...
"""

import json
import shutil
import sys
import tempfile

import av
import numpy as np
import torch
from mantis.models.idefics2 import Idefics2ForSequenceClassification
from PIL import Image
from transformers import Idefics2ImageProcessor, Idefics2Processor, PreTrainedTokenizerFast


def read_frames(path, max_frames):
    container = av.open(path)
    total = container.streams.video[0].frames
    indices = np.arange(0, total, total / max_frames).astype(int) if total > max_frames else np.arange(total)
    frames = []
    for i, frame in enumerate(container.decode(video=0)):
        if i > indices[-1]:
            break
        if i in indices:
            frames.append(frame.to_ndarray(format="rgb24"))
    return [Image.fromarray(x) for x in frames]


def load_tokenizer(checkpoint):
    # tokenizers 0.19 reads BPE merges as "a b" strings; the test checkpoint was written by a newer
    # tokenizers as ["a", "b"] pairs. The merges are the same.
    folder = tempfile.mkdtemp()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{checkpoint}/{name}", folder)
    with open(f"{folder}/tokenizer.json") as f:
        data = json.load(f)
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    data["model"].pop("ignore_merges", None)
    with open(f"{folder}/tokenizer.json", "w") as f:
        json.dump(data, f)
    return PreTrainedTokenizerFast.from_pretrained(folder)


def main(checkpoint, num_frames, template_file, out, *items):
    with open(template_file, "rb") as f:
        template = f.read().decode("utf-8")
    # The real checkpoints ship a transformers 4.x preprocessor_config.json; the test checkpoint is
    # written by transformers 5, so its processor is built here with the same settings.
    with open(f"{checkpoint}/processor_config.json") as f:
        settings = json.load(f)
    image_settings = settings["image_processor"]
    processor = Idefics2Processor(
        image_processor=Idefics2ImageProcessor(
            do_image_splitting=False,
            size=image_settings["size"],
            image_mean=image_settings["image_mean"],
            image_std=image_settings["image_std"],
        ),
        tokenizer=load_tokenizer(checkpoint),
        image_seq_len=settings["image_seq_len"],
    )
    model = Idefics2ForSequenceClassification.from_pretrained(checkpoint, torch_dtype=torch.float32).eval()
    scores = {}
    for item in items:
        path, prompt = item.split("::", 1)
        frames = read_frames(path, int(num_frames))
        query = template.format(text_prompt=prompt)
        query += "<image> " * (len(frames) - query.count("<image>"))
        inputs = processor(text=query, images=frames, return_tensors="pt")
        with torch.no_grad():
            scores[item] = model(**inputs).logits[0].tolist()
    with open(out, "w") as f:
        json.dump(scores, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
