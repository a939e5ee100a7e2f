"""VideoScore2's official scoring path, run by the tests in a separate environment.

This is `vs2_inference.py`'s pipeline on its pins (transformers 4.53.2, qwen-vl-utils): the messages with
the video at fps 2.0, `apply_chat_template`, `process_vision_info`, the Qwen2.5-VL processor with
fps=2.0, `AutoModelForVision2Seq` in float32. Two stand-ins, because torchvision cannot be installed
next to this machine's torch:
- torchvision's `io.read_video` and `transforms.functional.resize`, which qwen-vl-utils calls, are
  replaced by what they do: PyAV decoding to RGB, and torch's bicubic antialiased interpolation on the
  uint8 frames cast to float32, clamped and rounded back to uint8;
- the processor's video processor (torchvision-based in 4.53) is 4.53.2's numpy `Qwen2VLImageProcessor`
  video path (same smart_resize, rescale, normalize and patch order).
Then, with no generation, the answer's score line is forced after the prompt one label at a time (each
label after the previous one's most probable digit) and the five digit logits are read, and a greedy
generation is run for the official mode.

Usage: python videoscore2_pipeline.py CHECKPOINT TEMPLATE_FILE ANSWER_JSON MAX_NEW_TOKENS OUT_JSON VIDEO::PROMPT ...
"""

import enum
import importlib.machinery
import json
import sys
import types
from string import Template

import av
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers.utils import is_torchvision_available


def install_torchvision_stand_in():
    assert not is_torchvision_available()  # transformers must keep its torchvision-free code paths

    def read_video(path, start_pts=0.0, end_pts=None, pts_unit="sec", output_format="TCHW"):
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            fps = float(stream.average_rate)
        video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
        return video, torch.empty(0), {"video_fps": fps}

    def resize(img, size, interpolation=None, antialias=True):
        if list(img.shape[-2:]) == list(size):
            return img
        out = F.interpolate(img.float(), size=size, mode="bicubic", align_corners=False, antialias=antialias)
        return out.clamp(0, 255).round().to(img.dtype) if img.dtype == torch.uint8 else out

    torchvision = types.ModuleType("torchvision")
    torchvision.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    torchvision.__version__ = "0.21.0"
    torchvision.io = types.SimpleNamespace(read_video=read_video)
    functional = types.SimpleNamespace(resize=resize)
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    transforms.InterpolationMode = enum.Enum("InterpolationMode", {"BICUBIC": "bicubic", "BILINEAR": "bilinear"})
    torchvision.transforms = transforms
    sys.modules.update({"torchvision": torchvision, "torchvision.io": torchvision.io,
                        "torchvision.transforms": transforms})


def build_processor(checkpoint):
    image_processor = transformers.Qwen2VLImageProcessor.from_pretrained(checkpoint)

    class NumpyVideoProcessor(transformers.BaseVideoProcessor):
        """4.53.2's numpy video path of `Qwen2VLImageProcessor` behind the video processor's interface."""

        def __init__(self):  # the torchvision base class is a placeholder here: nothing to initialize
            self.temporal_patch_size = image_processor.temporal_patch_size
            self.merge_size = image_processor.merge_size

        def __call__(self, videos, **kwargs):
            return image_processor(images=None, videos=videos, return_tensors="pt")

    video_processor = NumpyVideoProcessor.__new__(NumpyVideoProcessor)
    NumpyVideoProcessor.__init__(video_processor)
    with open(f"{checkpoint}/chat_template.json") as f:
        chat_template = json.load(f)["chat_template"]
    return transformers.Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=transformers.AutoTokenizer.from_pretrained(checkpoint),
        video_processor=video_processor, chat_template=chat_template,
    )


def main(checkpoint, template_file, answer_file, max_new_tokens, out, *items):
    install_torchvision_stand_in()
    from qwen_vl_utils import process_vision_info

    with open(template_file, "rb") as f:
        template = Template(f.read().decode("utf-8"))
    with open(answer_file) as f:
        answer = json.load(f)  # {"prefix": ..., "labels": [...], "digits": ["1", ..., "5"]}
    processor = build_processor(checkpoint)
    tokenizer = processor.tokenizer
    model = transformers.AutoModelForVision2Seq.from_pretrained(checkpoint, trust_remote_code=True).eval()
    assert model.dtype == torch.float32
    digit_ids = [tokenizer.encode(d, add_special_tokens=False)[0] for d in answer["digits"]]
    results = {}
    for item in items:
        path, prompt = item.split("::", 1)
        messages = [{"role": "user", "content": [
            {"type": "video", "video": path, "fps": 2.0},
            {"type": "text", "text": template.substitute(t2v_prompt=prompt)},
        ]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        image_inputs, video_inputs = process_vision_info(messages)
        inputs = processor(text=[text], images=image_inputs, videos=video_inputs, fps=2.0, padding=True,
                           return_tensors="pt")
        logits, written = [], answer["prefix"]
        with torch.no_grad():
            for k, label in enumerate(answer["labels"]):
                written += (answer["digits"][int(torch.tensor(logits[-1]).argmax())] if k else "") + label
                ids = torch.cat([inputs["input_ids"], torch.tensor([tokenizer.encode(written, add_special_tokens=False)])], 1)
                step = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=inputs["pixel_values_videos"],
                             video_grid_thw=inputs["video_grid_thw"], second_per_grid_ts=inputs["second_per_grid_ts"])
                logits.append(step.logits[0, -1, digit_ids].tolist())
            generated = model.generate(**inputs, max_new_tokens=int(max_new_tokens), do_sample=False)
        new = generated[:, inputs["input_ids"].shape[1]:]
        results[item] = {
            "digit_logits": logits,
            "frames": int(video_inputs[0].shape[0]),
            "grid": inputs["video_grid_thw"][0].tolist(),
            "text": processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0],
        }
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
