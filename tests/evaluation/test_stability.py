"""`stability`: transformed files are what they claim, and their score changes are measured."""

import re

import av
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from videoscore_reward import VideoScoreReward, load_video
from videoscore_reward.cli import main
from videoscore_reward.evaluation import stability
from videoscore_reward.evaluation.stability import get_transforms, transcode
from videoscore_reward.testing import make_frames, write_test_video

FRAMES = 4  # frames the reward samples: few, the tiny model costs ~0.1 s per frame on a CPU


@pytest.fixture(scope="module")
def reward(tiny_checkpoint_dir):
    return VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", num_frames=FRAMES)


def static_symmetric_video(path, height=256, width=320, num_frames=6):
    """Identical frames, symmetric left to right, stored losslessly (PNG frames in QuickTime)."""
    ramp = torch.minimum(torch.arange(width), width - 1 - torch.arange(width)).float()
    frame = torch.stack([ramp * 1.5, torch.full_like(ramp, 90), 255 - ramp]).clamp(0, 255).to(torch.uint8)
    frames = frame[:, None, :].expand(3, height, width).unsqueeze(0).repeat(num_frames, 1, 1, 1)
    assert torch.equal(frames, frames.flip(-1))
    path = write_test_video(path, frames=frames, codec="png", pix_fmt="rgb24")
    assert torch.equal(load_video(path), frames)
    return path


def test_transcode_writes_what_each_transform_says(tmp_path):
    source = write_test_video(tmp_path / "src.mp4", frames=make_frames(12, 256, 320), fps=12)
    original = load_video(source)
    transforms = {t.name: t for t in get_transforms()}

    transcode(source, tmp_path / "240p.mp4", transforms["240p"])
    assert load_video(tmp_path / "240p.mp4").shape == (12, 3, 240, 300)
    assert transcode(source, tmp_path / "360p.mp4", transforms["360p"]) is False  # 256 px is below 360p already

    transcode(source, tmp_path / "mirror.mp4", transforms["mirror"])
    assert torch.equal(load_video(tmp_path / "mirror.mp4"), original.flip(-1))  # lossless RGB: exactly mirrored

    transcode(source, tmp_path / "half.mp4", transforms["every other frame"])
    assert torch.equal(load_video(tmp_path / "half.mp4"), original[::2])
    transcode(source, tmp_path / "fps.mp4", transforms["fps x2/3"])
    with av.open(str(tmp_path / "fps.mp4")) as container:
        assert container.streams.video[0].average_rate == 8  # 12 fps -> 8 fps, same duration
    assert torch.equal(load_video(tmp_path / "fps.mp4"), original[[0, 1, 3, 4, 6, 7, 9, 10]])

    phone = write_test_video(tmp_path / "phone.mp4", frames=make_frames(6, 48, 64), rotation=90)
    transcode(phone, tmp_path / "phone_half.mp4", transforms["every other frame"])  # rotation applied, not lost
    assert torch.equal(load_video(tmp_path / "phone_half.mp4"), load_video(phone)[::2])

    transcode(source, tmp_path / "crf.mp4", transforms["crf 28"])
    reencoded = load_video(tmp_path / "crf.mp4")
    assert reencoded.shape == original.shape and not torch.equal(reencoded, original)
    assert (reencoded.float() - original.float()).abs().mean() < 8  # lossy, not garbage


def test_static_mirror_is_near_zero_and_240p_is_measured(tmp_path, reward):
    folder = tmp_path / "videos"
    source = static_symmetric_video(folder / "static_scene.mov")
    result = stability(reward, folder, transforms=["240p", "mirror"], progress=False)
    rows = result.rows.set_index("transform")
    assert list(rows.index) == ["240p", "mirror"] and (rows["error"] == "").all()
    columns = [*reward.aspects, "reward"]
    mirror = rows.loc["mirror", [f"{c} change" for c in columns]].to_numpy(float)
    assert np.abs(mirror).max() < 1e-4

    # The 240p change, measured independently: the decoded frames downscaled with swscale's bicubic.
    frames = load_video(source, FRAMES)
    small = torch.stack([
        torch.from_numpy(av.VideoFrame.from_ndarray(f.permute(1, 2, 0).numpy(), format="rgb24")
                         .reformat(width=300, height=240, interpolation="BICUBIC").to_ndarray()).permute(2, 0, 1)
        for f in frames
    ])
    out = reward([frames, small], "static scene")
    expected = torch.cat([out.scores[1] - out.scores[0], (out.rewards[1] - out.rewards[0])[None]]).numpy()
    measured = rows.loc["240p", [f"{c} change" for c in columns]].to_numpy(float)
    np.testing.assert_allclose(measured, expected, atol=1e-4)
    assert np.abs(measured).max() > 1e-3  # the tiny model does move with resolution

    summary = result.summary()
    assert summary["240p"]["n"] == 1
    assert summary["240p"]["changes"]["reward"]["mean"] == pytest.approx(float(expected[-1]), abs=1e-4)
    assert summary["240p"]["changes"]["reward"]["max_abs"] == pytest.approx(abs(float(expected[-1])), abs=1e-4)
    result.write(tmp_path / "out")
    assert f"| 240p | 1 | {measured[0]:+.3f} / {abs(measured[0]):.3f} |" in (tmp_path / "out" / "stability.md").read_text()
    with Image.open(tmp_path / "out" / "stability.png") as image:
        assert image.format == "PNG" and image.size == (640, 480)


def test_cli_goes_on_past_a_bad_file(tmp_path, tiny_checkpoint_dir, capsys):
    folder = tmp_path / "videos"
    write_test_video(folder / "a_cat_seed_1.mp4", 6, 64, 48)
    (folder / "broken.mp4").write_text("not a video")
    code = main(["stability", str(folder), "--model", str(tiny_checkpoint_dir), "--num-frames", "2",
                 "--transforms", "mirror,240p", "--no-progress", "--out", str(tmp_path / "out")])
    assert code == 0
    captured = capsys.readouterr()
    assert "| mirror | 1 |" in captured.out and "| 240p | 0 | n/a" in captured.out
    assert re.search(r"failed: broken.mp4 \((240p|mirror)\): VideoLoadError: .*broken.mp4 is not a readable video", captured.err)
    table = pd.read_csv(tmp_path / "out" / "stability.csv", keep_default_na=False)
    assert table.set_index(["video_name", "transform"]).loc[("a_cat_seed_1.mp4", "240p"), "error"].startswith("skipped")

    assert main(["stability", str(folder), "--transforms", "upside down", "--model", str(tiny_checkpoint_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --transforms: unknown transformation(s) ['upside down']") and err.count("\n") == 1
