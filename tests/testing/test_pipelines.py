"""The tiny pipelines: each family builds offline, runs with its small arguments, and is seeded."""

import pytest
import torch
from PIL import Image

from videoscore_reward.testing.pipelines import TINY_CALL_KWARGS, tiny_pipeline


def call(pipe, name, **kwargs):
    extra = {"image": Image.new("RGB", (16, 16), (200, 40, 90))} if name == "wan_i2v" else {}
    return pipe(prompt="a cat", generator=torch.Generator().manual_seed(0), output_type="pt",
                **{**TINY_CALL_KWARGS[name], "num_inference_steps": 2, **extra, **kwargs}).frames


@pytest.mark.parametrize("name", sorted(TINY_CALL_KWARGS))
def test_tiny_pipeline_runs_and_is_seeded(name):
    pipe = tiny_pipeline(name)
    frames = call(pipe, name)
    size = TINY_CALL_KWARGS[name]
    assert frames.shape == (1, size["num_frames"], 3, size["height"], size["width"])
    assert 0 <= frames.min() and frames.max() <= 1 and frames.std() > 0
    rng = torch.get_rng_state()
    again = tiny_pipeline(name)
    assert torch.equal(torch.get_rng_state(), rng), "building leaves the global RNG as it was"
    torch.testing.assert_close(call(again, name), frames, atol=0, rtol=0)


def test_unknown_tiny_pipeline_is_named():
    with pytest.raises(ValueError, match="Unknown tiny pipeline 'sora'"):
        tiny_pipeline("sora")
