"""`videoscore-reward score` with a VideoScore2 checkpoint: its three aspect columns, 2 frames per second."""

import torch

from videoscore_reward import load_video
from videoscore_reward.cli import main
from videoscore_reward.folder import read_table
from videoscore_reward.reward.videoscore2 import VIDEOSCORE2, VideoScore2Reward
from videoscore_reward.testing import write_test_video

ASPECTS = ["visual quality", "text-to-video alignment", "physical/common-sense consistency"]


def test_score_folder_with_videoscore2(tmp_path, vs2_checkpoint, capsys):
    root = tmp_path / "gen"
    write_test_video(root / "a_cat_seed_1.mp4", 24, 64, 48, fps=8)  # 3 s -> 6 frames
    write_test_video(root / "sub" / "a_dog_seed_2.webm", 10, 56, 56, codec="libvpx-vp9", fps=10)  # 1 s -> 4
    (root / "bad.mp4").write_text("x")
    out = tmp_path / "scores.csv"
    assert main(["score", str(root), "--model", "tiny-random-videoscore2", "--out", str(out), "--no-progress",
                 "--weights", "physical/common-sense consistency=1"]) == 0
    assert "tiny random checkpoint" in capsys.readouterr().err
    table = read_table(out)
    assert list(table.columns) == ["video_name", *ASPECTS, "reward", "prompt", "num_frames", "error"]
    assert list(table["video_name"]) == ["a_cat_seed_1.mp4", "bad.mp4", "sub/a_dog_seed_2.webm"]
    assert list(table["num_frames"]) == [6, 0, 4]
    good = table[table["error"] == ""]
    assert len(good) == 2 and table.loc[1, "error"].startswith("VideoLoadError")
    assert good[ASPECTS].ge(1).all().all() and good[ASPECTS].le(5).all().all()
    assert (good["reward"] == good["physical/common-sense consistency"]).all()

    # The rows are the scores of the Python API on the same files (same seed: same tiny weights).
    reward = VideoScore2Reward.from_pretrained(vs2_checkpoint, device="cpu")
    frames = [load_video(root / name, reward.sampling) for name in ("a_cat_seed_1.mp4", "sub/a_dog_seed_2.webm")]
    expected = reward(frames, ["a cat", "a dog"]).scores
    torch.testing.assert_close(torch.tensor(good[ASPECTS].to_numpy(), dtype=torch.float32), expected, atol=1e-4, rtol=0)


def test_videoscore2_options_are_refused_for_v1(tmp_path, tiny_checkpoint_dir, capsys):
    root = tmp_path / "gen"
    write_test_video(root / "a.mp4", 8, 32, 32)
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--mode", "official", "--no-progress"]) == 2
    assert "['mode'] apply to VideoScore2 checkpoints only" in capsys.readouterr().err
    assert main(["score", str(root), "--model", "tiny-random-videoscore2", "--weights", "dynamic degree=1",
                 "--no-progress"]) == 2
    assert "Unknown aspect(s) in weights: ['dynamic degree']" in capsys.readouterr().err
    assert VIDEOSCORE2.aspects == tuple(ASPECTS)


def test_a_table_of_the_other_family_is_not_resumed(tmp_path, tiny_checkpoint_dir, capsys):
    root = tmp_path / "gen"
    write_test_video(root / "a.mp4", 8, 32, 32)
    out = tmp_path / "scores.csv"
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--out", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    assert main(["score", str(root), "--model", "tiny-random-videoscore2", "--out", str(out), "--no-progress"]) == 2
    assert "is not a results table of `videoscore-reward score` with this model's aspects" in capsys.readouterr().err
    assert out.read_bytes() == before
