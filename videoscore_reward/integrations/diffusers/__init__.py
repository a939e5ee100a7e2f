"""diffusers integration: score video pipeline output, best-of-N reranking, a step callback.

Works with diffusers' text/image-to-video pipelines: AnimateDiff (SD1.5, SDXL), Wan 2.1/2.2 (T2V, I2V),
CogVideoX, LTX-Video, HunyuanVideo. Needs the `diffusers` extra.
"""

from ...extras import require

require("diffusers", "videoscore_reward.integrations.diffusers")  # one clear line before diffusers imports fail

from .best_of_n import BestOfN, Candidate, best_of_n
from .callback import RewardCallback, StepReward
from .output import pipeline_frames, save_video, score_pipeline_output

__all__ = [
    "BestOfN",
    "Candidate",
    "RewardCallback",
    "StepReward",
    "best_of_n",
    "pipeline_frames",
    "save_video",
    "score_pipeline_output",
]
