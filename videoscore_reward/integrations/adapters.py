"""Any reward (`VideoScoreReward`, `RemoteReward`, ...) in the reward-call forms of other people's trainers.

- `FlowGRPOReward`: Flow-GRPO's `multi_score` form, `fn(images, prompts, metadata, only_strict=True)
  -> ({aspect: [B], ..., "avg": [B]}, {})`.
- `DanceGRPOReward`: DanceGRPO's path form (VideoAlign's `inferencer.reward(paths, prompts, use_norm=True)
  -> [{"VQ": ..., "MQ": ..., ...}]`).
- `FlowFactoryReward`: Flow-Factory's pointwise form, `model(prompt=[...], video=[(T, C, H, W), ...])
  -> output.rewards [B]`.

Each adapter is a small picklable object with a `__name__` ("videoscore") that holds the reward, so
a trainer switches between local and remote scoring by changing the line that builds the reward.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..reward.base import BaseReward
from ..reward.reward_fn import VideoScoreRewardFn, _as_videos
from ..reward.video import load_video

__all__ = ["VIDEOALIGN_KEYS", "DanceGRPOReward", "FlowFactoryReward", "FlowGRPOReward", "PointwiseRewardOutput"]


class FlowGRPOReward:
    """A reward in Flow-GRPO's form: the drop-in for `flow_grpo.rewards.multi_score(device, {...})`.

    In Flow-GRPO's training scripts (scripts/train_wan2_1.py, train_sd3.py, ...)::

        reward_fn = FlowGRPOReward(reward)   # was: getattr(flow_grpo.rewards, 'multi_score')(accelerator.device, config.reward_fn)
        rewards = executor.submit(reward_fn, videos, prompts, prompt_metadata, only_strict=True)
        rewards, reward_metadata = rewards.result()

    Call: `fn(images, prompts, metadata=None, ref_images=None, only_strict=True, **kwargs)`.
    images: float [B, T, C, H, W] videos (what `WanPipeline(output_type="pt")` gives) or [B, C, H, W]
    images (one-frame videos), values in `value_range` (default [0, 1]). `metadata`, `ref_images`,
    `only_strict` and any further keyword are accepted and not used (they serve GenEval and
    image-similarity rewards). Returns `(scores, {})`, with `scores` holding one float32 numpy array [B]
    per aspect, by aspect name, and the weighted reward (the reward's `weights` and `normalize`) under
    "avg", which Flow-GRPO's advantages use; its `reward_<key>` logging then shows every aspect.

    Flow-GRPO calls reward functions from a thread pool; scoring goes through `reward.submit`, so a
    local reward scores one batch at a time on its GPU and a `RemoteReward` sends them concurrently.
    """

    __name__ = "videoscore"

    def __init__(self, reward: BaseReward, *, value_range: tuple[float, float] = (0.0, 1.0)):
        self.reward = reward
        self.value_range = value_range

    def __call__(self, images: torch.Tensor, prompts: Sequence[str], metadata: Any = None, ref_images: Any = None,
                 only_strict: bool = True, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict]:
        output = self.reward.submit(_as_videos(images), list(prompts), value_range=self.value_range).result()
        scores = output.scores.float().cpu().numpy()
        details = {name: scores[:, i] for i, name in enumerate(output.aspects)}
        details["avg"] = output.rewards.float().cpu().numpy()
        return details, {}


VIDEOALIGN_KEYS: dict[str, str] = {
    "VQ": "visual quality",
    "MQ": "temporal consistency",
    "TA": "text-to-video alignment",
}
"""VideoAlign's keys (visual quality, motion quality, text alignment) and the VideoScore aspect that
`DanceGRPOReward` reports under each; "Overall" is the weighted reward."""


class DanceGRPOReward:
    """A reward in DanceGRPO's path form: the drop-in for its VideoAlign `inferencer`.

    DanceGRPO (fastvideo/train_grpo_hunyuan.py, train_grpo_wan_2_1.py) writes each sample to an mp4 and
    scores it by path, one at a time::

        inferencer = DanceGRPOReward(reward)   # was: VideoVLMRewardInference(load_from_pretrained, ...)
        reward = inferencer.reward([absolute_path], [batch_caption[0]], use_norm=True)
        vq_reward = torch.tensor(reward[0]['VQ']).to(device)

    Call (or `.reward`): `fn(video_paths, prompts, use_norm=True, **kwargs) -> list of dicts`, one per
    path, in order. Each file is decoded with `load_video` (only the frames the model sees). Each dict
    holds every aspect by name, "reward" (the weighted reward), and VideoAlign's keys where the reward has
    the matching aspect (`VIDEOALIGN_KEYS`) plus "Overall" (the weighted reward), so DanceGRPO's
    `reward[0]['VQ']` / `['MQ']` read VideoScore's visual quality and temporal consistency. `use_norm` is
    accepted and not used: the reward's own `normalize` applies. A file that cannot be decoded raises
    `VideoLoadError` or `FileNotFoundError` naming it.
    """

    __name__ = "videoscore"

    def __init__(self, reward: BaseReward):
        self.scorer = reward

    def __call__(self, video_paths: Sequence[str | os.PathLike], prompts: str | Sequence[str], use_norm: bool = True,
                 **kwargs: Any) -> list[dict[str, float]]:
        if isinstance(video_paths, (str, os.PathLike)):
            video_paths = [video_paths]
        videos = [load_video(path, self.scorer.sampling) for path in video_paths]
        output = self.scorer(videos, prompts if isinstance(prompts, str) else list(prompts))
        rows = output.to_dicts()
        for row in rows:
            row.update({key: row[aspect] for key, aspect in VIDEOALIGN_KEYS.items() if aspect in row})
            row["Overall"] = row["reward"]
        return rows

    reward = __call__


@dataclass
class PointwiseRewardOutput:
    """What `FlowFactoryReward` returns, with the fields of Flow-Factory's `RewardModelOutput`.

    rewards: float32 [B], the weighted reward. extra_info: "scores" float32 [B, A] and each aspect's [B].
    """

    rewards: torch.Tensor
    extra_info: dict[str, torch.Tensor] = field(default_factory=dict)


class FlowFactoryReward:
    """A reward in Flow-Factory's pointwise form (`use_tensor_inputs = True`: videos as (T, C, H, W) tensors).

    Flow-Factory builds reward models by class path with `(config, accelerator)` and calls them with
    keyword arguments (`output = model(**batch_input)`, then reads `output.rewards`). A subclass of its
    `PointwiseRewardModel` hands the call on::

        class VideoScoreRewardModel(PointwiseRewardModel):
            required_fields = ("prompt", "video")
            use_tensor_inputs = True

            def __init__(self, config, accelerator):
                super().__init__(config, accelerator)
                self.videoscore = FlowFactoryReward(VideoScoreReward.from_pretrained(..., device=self.device))

            def __call__(self, prompt, video=None, **kwargs):
                return self.videoscore(prompt=prompt, video=video)

    Call: `fn(prompt, video=None, image=None, **kwargs) -> PointwiseRewardOutput`. prompt: B strings.
    video: B float tensors (T, C, H, W) in `value_range` (default [0, 1]), lengths and sizes may differ;
    or image: B tensors (C, H, W), scored as one-frame videos. Other keywords (condition images,
    metadata) are accepted and not used.
    """

    __name__ = "videoscore"
    required_fields = ("prompt", "video")
    use_tensor_inputs = True

    def __init__(self, reward: BaseReward, *, value_range: tuple[float, float] = (0.0, 1.0)):
        self.reward = reward
        self.value_range = value_range

    def __call__(self, prompt: Sequence[str], video: Sequence[torch.Tensor] | None = None,
                 image: Sequence[torch.Tensor] | None = None, **kwargs: Any) -> PointwiseRewardOutput:
        if video is None and image is None:
            raise ValueError("FlowFactoryReward needs video= (a list of (T, C, H, W) tensors) or image= "
                             "(a list of (C, H, W) tensors); got neither.")
        if video is not None:
            videos = list(video)
        else:
            for i, frame in enumerate(image):
                if not isinstance(frame, torch.Tensor) or frame.ndim != 3:
                    raise TypeError(f"image[{i}] must be a (C, H, W) tensor (use_tensor_inputs=True), "
                                    f"got {type(frame).__name__} {tuple(getattr(frame, 'shape', ()))}.")
            videos = [frame.unsqueeze(0) for frame in image]
        output = self.reward(videos, list(prompt), value_range=self.value_range)
        return PointwiseRewardOutput(rewards=output.rewards, extra_info=VideoScoreRewardFn.info(output))
