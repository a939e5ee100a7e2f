import pytest
import torch

from videoscore_reward.testing import make_frames


@pytest.fixture(scope="module")
def video():
    return make_frames(6, 32, 32).float() / 255  # [T, C, H, W] in [0, 1]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda v: v, r"5-D tensor BTCHW, got shape \(6, 3, 32, 32\).*pass \[video\]"),
        (lambda v: v[None, :, :2], r"has 2 channels.*expected 3"),
        (lambda v: v[None].transpose(1, 2), r"has 6 channels.*expected 3"),
        (lambda v: v[None, :0], r"zero frames"),
        (lambda v: v[:0][None][:0], r"empty batch"),
        (lambda v: [], r"empty batch"),
        (lambda v: [v, v[0]], r"videos\[1\] must be a 4-D tensor"),
        (lambda v: torch.where(torch.arange(32) == 3, float("nan"), v)[None], r"videos\[0\] contains NaN"),
        (lambda v: torch.where(torch.arange(32) == 3, float("inf"), v)[None], r"contains infinite"),
        (lambda v: (v * 255)[None], r"values in \[0, 255\], outside the declared value_range \(0, 1\)"),
        (lambda v: (v * 2 - 1)[None], r"outside the declared value_range \(0, 1\).*value_range=\(-1, 1\)"),
        (lambda v: v[None].to(torch.int32), r"dtype torch.int32; expected uint8"),
    ],
    ids=["rank", "channels", "wrong-layout", "zero-frames", "empty-tensor", "empty-list", "list-rank", "nan", "inf",
         "0-255-as-float", "minus1-1-undeclared", "int32"],
)
def test_bad_videos_are_named_errors(tiny_reward, video, make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny_reward(make(video), "a prompt")


def test_channel_error_hints_at_layout(tiny_reward, video):
    with pytest.raises(ValueError, match="layout='BCTHW'"):
        tiny_reward(video[:5].transpose(0, 1)[None], "p")  # [1, C=3, T=5, H, W] given as BTCHW


def test_error_types(tiny_reward, video):
    with pytest.raises(TypeError, match="videos must be a tensor"):
        tiny_reward("video.mp4", "p")
    with pytest.raises(TypeError, match=r"videos\[0\] must be a torch.Tensor"):
        tiny_reward([video.numpy()], "p")
    with pytest.raises(ValueError, match="layout must be"):
        tiny_reward(video[None], "p", layout="BHWC")
    with pytest.raises(ValueError, match="value_range"):
        tiny_reward(video[None], "p", value_range=(1, 0))


def test_prompt_count_must_match(tiny_reward, video):
    with pytest.raises(ValueError, match="Got 3 prompts for 2 videos"):
        tiny_reward(torch.stack([video, video]), ["a", "b", "c"])
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a string"):
        tiny_reward(torch.stack([video, video]), ["a", 3])


def test_single_prompt_is_broadcast(tiny_reward, video):
    batch = torch.stack([video, video.flip(-1)])
    torch.testing.assert_close(tiny_reward(batch, "same").scores, tiny_reward(batch, ["same", "same"]).scores)


def test_prompt_and_content_change_the_scores(tiny_reward, video):
    base = tiny_reward(video[None], "a cat").scores
    assert (tiny_reward(video[None], "a rocket launch at night").scores - base).abs().max() > 1e-3
    assert (tiny_reward((1 - video)[None], "a cat").scores - base).abs().max() > 1e-3


def test_values_just_outside_range_are_tolerated(tiny_reward, video):
    nudged = (video * 1.0004 - 0.0002)[None]
    torch.testing.assert_close(tiny_reward(nudged, "p").scores, tiny_reward(video[None], "p").scores, atol=1e-5, rtol=0)


def test_input_tensor_is_not_modified(tiny_reward, video):
    batch = video[None].clone()
    tiny_reward(batch, "p")
    assert torch.equal(batch, video[None])
