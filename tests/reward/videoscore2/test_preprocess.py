"""VideoScore2's frame sampling, sizes, patches and 3-D positions against the rules they reproduce."""

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2_5_VLConfig
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

from videoscore_reward import load_video
from videoscore_reward.reward.videoscore2 import VIDEOSCORE2, VideoScore2Reward
from videoscore_reward.reward.videoscore2.model import positions_4x
from videoscore_reward.reward.videoscore2.preprocess import (
    resize_frames, resized_size, sample_frame_indices, video_inputs,
)
from videoscore_reward.testing import write_test_video


@pytest.mark.parametrize(
    "total, fps, expected",
    [
        (20, 8, [0, 6, 13, 19]),  # 2.5 s -> 5 frames -> even: 4
        (24, 8, [0, 5, 9, 14, 18, 23]),  # 3 s -> 6
        (10, 30, [0, 3, 6, 9]),  # 1/3 s: at least 4 frames
        (3, 30, [0, 2]),  # fewer than 4 frames: the even count below the total
        (1, 30, [0, 0]),  # one frame is shown twice (the original refuses it)
        (2000, 25, None),  # 80 s -> 160 frames
    ],
)
def test_frames_follow_qwen_vl_utils(total, fps, expected):
    indices = sample_frame_indices(total, fps, VIDEOSCORE2)
    if expected is not None:
        assert indices == expected
    else:
        assert len(indices) == 160 and indices[0] == 0 and indices[-1] == total - 1
    with pytest.raises(ValueError, match="video_fps must be a positive number"):
        sample_frame_indices(10, 0.0, VIDEOSCORE2)


@pytest.mark.parametrize(
    "height, width, frames, expected",
    [
        (56, 56, 4, (336, 336)),  # below min_pixels: scaled up (FACTS: grid [2, 24, 24], 288 tokens)
        (480, 832, 10, (476, 840)),  # Wan 480p: rounded to multiples of 28
        (720, 960, 10, (700, 952)),  # the SFT cap itself: 728x952 would exceed it, so floor
        (720, 1280, 10, (616, 1092)),  # 720p: scaled down below 960x720 pixels
    ],
)
def test_sizes_follow_smart_resize(height, width, frames, expected):
    h, w = resized_size(height, width, frames, VIDEOSCORE2)
    assert (h, w) == expected
    assert h % 28 == 0 and w % 28 == 0 and VIDEOSCORE2.min_pixels <= h * w <= VIDEOSCORE2.max_pixels


def test_resize_is_torchvision_bicubic_antialias_rounded():
    frames = torch.randint(0, 256, (2, 3, 40, 50), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = resize_frames(frames, (84, 112))
    # torchvision casts uint8 to float32, resizes, clamps and rounds: equal to the float64 result to one level.
    reference = F.interpolate(frames.double(), size=(84, 112), mode="bicubic", antialias=True).clamp(0, 255).round()
    assert out.dtype == torch.uint8 and (out.double() - reference).abs().max() <= 1
    assert (out.double() != reference).float().mean() < 0.01
    assert resize_frames(frames, (40, 50)) is frames


def test_patches_are_the_processor_layout():
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (3, 3, 336, 336), dtype=torch.uint8, generator=g)  # odd: last frame repeated
    video = video_inputs(frames, VIDEOSCORE2)
    assert video.grid_thw == (2, 24, 24) and video.num_tokens == 288
    assert video.pixel_values.shape == (2 * 24 * 24, 3 * 2 * 14 * 14)
    mean = torch.tensor(VIDEOSCORE2.image_mean).view(3, 1, 1)
    std = torch.tensor(VIDEOSCORE2.image_std).view(3, 1, 1)
    # Patch 0 is frames 0-1, merge cell (0, 0), sub-patch (0, 0): pixels [0:14, 0:14]; patch 3 is sub-patch
    # (1, 1) of that cell: pixels [14:28, 14:28]; the last patch holds frame 2 twice.
    def patch(t0, t1, y, x):
        pixels = torch.stack([frames[t0], frames[t1]])[:, :, y:y + 14, x:x + 14].float() / 255
        return ((pixels - mean) / std).permute(1, 0, 2, 3).reshape(-1)

    torch.testing.assert_close(video.pixel_values[0], patch(0, 1, 0, 0), atol=1e-5, rtol=0)
    torch.testing.assert_close(video.pixel_values[3], patch(0, 1, 14, 14), atol=1e-5, rtol=0)
    torch.testing.assert_close(video.pixel_values[-1], patch(2, 2, 322, 322), atol=1e-5, rtol=0)


def test_positions_are_transformers_4x():
    """Text, a video of t x h x w merged cells, text: 4.x continues after the largest position, 5.x after
    start + max(h, w); the video's own positions agree."""
    t, h, w = 5, 4, 6  # in patches: 5 x 8 x 12; 2 (t - 1) > max(h, w) - 1, where the versions part
    types = torch.tensor([[0] * 5 + [2] * (t * h * w) + [0] * 4])
    mask = torch.ones_like(types)
    grid = torch.tensor([[t, 2 * h, 2 * w]])
    ours, delta = positions_4x(types, mask, grid, spatial_merge_size=2, time_step=2)
    video = ours[:, 0, 5:5 + t * h * w]
    assert video[0].unique().tolist() == [5, 7, 9, 11, 13] and video[1].max() == 5 + h - 1 and video[2].max() == 5 + w - 1
    after = max(5 + 2 * (t - 1), 5 + h - 1, 5 + w - 1) + 1  # 14
    assert ours[:, 0, -4:].tolist() == [list(range(after, after + 4))] * 3
    assert delta.item() == after + 4 - types.shape[1]

    config = Qwen2_5_VLConfig(vision_config={"spatial_merge_size": 2, "tokens_per_second": 2})
    v5, _ = Qwen2_5_VLModel.get_rope_index(
        type("M", (), {"config": config, "get_vision_position_ids": Qwen2_5_VLModel.get_vision_position_ids})(),
        input_ids=torch.zeros_like(types), mm_token_type_ids=types, video_grid_thw=grid,
        second_per_grid_ts=torch.tensor([1.0]), attention_mask=mask,
    )
    assert torch.equal(v5[:, :, :5 + t * h * w], ours[:, :, :5 + t * h * w])
    assert v5[0, 0, -4].item() == 5 + max(h, w) != after


def test_left_padding_gives_each_row_its_own_positions():
    types = torch.tensor([[0, 0, 2, 2, 2, 2, 0], [0, 0, 0, 2, 2, 2, 2]])
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    types[0] = torch.tensor([0, 0, 2, 2, 2, 2, 0])
    grid = torch.tensor([[1, 4, 4], [1, 4, 4]])
    positions, delta = positions_4x(types, mask, grid, spatial_merge_size=2, time_step=2)
    alone, _ = positions_4x(types[:1, 1:], mask[:1, 1:], grid[:1], spatial_merge_size=2, time_step=2)
    assert torch.equal(positions[:, 0, 1:], alone[:, 0])
    assert delta[0].item() == positions[0, 0, -1].item() + 1 - 6


def test_video_files_sample_by_time(tmp_path):
    path = write_test_video(tmp_path / "v.mp4", num_frames=24, fps=8)
    sampler = VideoScore2Reward.sampling.fget(type("R", (), {"facts": VIDEOSCORE2})())
    frames = load_video(path, sampler)
    every = load_video(path)
    assert torch.equal(frames, every[[0, 5, 9, 14, 18, 23]])
