import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from videoscore_reward import ASPECTS, load_video
from videoscore_reward.cli import main, parse_weights
from videoscore_reward.folder import COLUMNS, find_videos, prompt_from_file_name
from videoscore_reward.testing import write_test_video

SEED_NAME = "solo,Xiangling,_carry_money_in_a_wallet__genshin_impact__,1girl,highres,_seed_1294598571.mp4"


def test_prompt_from_file_name():
    from pathlib import Path

    assert prompt_from_file_name(Path(SEED_NAME)) == "solo,Xiangling, carry money in a wallet  genshin impact  ,1girl,highres,"
    assert prompt_from_file_name(Path("a_red_fox.webm")) == "a red fox"


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "videos"
    write_test_video(root / SEED_NAME, 20)
    write_test_video(root / "clips" / "fox.webm", 12, codec="libvpx-vp9")
    (root / "clips" / "fox.txt").write_text("a red fox in the snow\n")
    write_test_video(root / "LOUD.MOV", 10, codec="mpeg4")
    write_test_video(root / "anim.gif", 6, codec="gif", pix_fmt="rgb8")
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.mkv").write_text("not a video")
    (root / "readme.txt").write_text("not a video extension, ignored")
    return root


def test_finds_videos_recursively_sorted(folder):
    names = [p.relative_to(folder).as_posix() for p in find_videos(folder)]
    assert names == sorted(["LOUD.MOV", "anim.gif", "clips/fox.webm", "empty.mp4", "notes.mkv", SEED_NAME])


def test_score_folder_rows_scores_prompts_and_errors(folder, tiny_checkpoint_dir, tiny_reward, capsys):
    code = main(["score", str(folder), "--model", str(tiny_checkpoint_dir), "--batch-size", "2", "--no-progress"])
    assert code == 0
    table = pd.read_csv(folder / "evaluation_results.csv", keep_default_na=False)
    assert list(table.columns) == COLUMNS
    assert table["video_name"].tolist() == [p.relative_to(folder).as_posix() for p in find_videos(folder)]
    rows = table.set_index("video_name")
    assert rows.loc["clips/fox.webm", "prompt"] == "a red fox in the snow"
    assert rows.loc[SEED_NAME, "prompt"] == "solo,Xiangling, carry money in a wallet  genshin impact  ,1girl,highres,"
    assert "is empty" in rows.loc["empty.mp4", "error"] and "not a readable video" in rows.loc["notes.mkv", "error"]
    for name in ("LOUD.MOV", "anim.gif", "clips/fox.webm", SEED_NAME):
        assert rows.loc[name, "error"] == ""
        frames = load_video(folder / name, 16)
        expected = tiny_reward([frames], [rows.loc[name, "prompt"]])
        got = torch.tensor([float(rows.loc[name, a]) for a in ASPECTS])
        torch.testing.assert_close(got, expected.scores[0], atol=1e-4, rtol=0)
        assert abs(float(rows.loc[name, "reward"]) - expected.rewards[0].item()) < 1e-4
        assert rows.loc[name, "num_frames"] == frames.shape[0]
    err = capsys.readouterr().err
    assert "scored 4, failed 2" in err and "videos/s" in err


def test_prompt_options_and_parquet(folder, tiny_checkpoint_dir, tmp_path):
    csv = tmp_path / "prompts.csv"
    pd.DataFrame({"file_name": ["anim.gif"], "prompt": ["from the csv"]}).to_csv(csv, index=False)
    out = tmp_path / "out.parquet"
    assert main(["score", str(folder), "--model", str(tiny_checkpoint_dir), "--prompts-csv", str(csv),
                 "--out", str(out), "--no-progress", "--weights", "dynamic degree=1"]) == 0
    table = pd.read_parquet(out).set_index("video_name")
    assert table.loc["anim.gif", "prompt"] == "from the csv"
    assert table.loc["clips/fox.webm", "prompt"] == "a red fox in the snow"
    ok = table[table["error"] == ""]
    torch.testing.assert_close(torch.tensor(ok["reward"].values), torch.tensor(ok["dynamic degree"].values))

    out2 = tmp_path / "all.csv"
    assert main(["score", str(folder), "--model", str(tiny_checkpoint_dir), "--prompt", "one prompt", "--out", str(out2), "--no-progress"]) == 0
    assert set(pd.read_csv(out2)["prompt"]) == {"one prompt"}


def test_exit_codes(tmp_path, tiny_checkpoint_dir, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_text("nope")
    assert main(["score", str(bad), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 1
    assert "no video could be scored" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing"), "--model", str(tiny_checkpoint_dir)]) == 2
    with pytest.raises(SystemExit) as info:
        main(["score", str(bad), "--weights", "visual quality"])
    assert info.value.code == 2
    with pytest.raises(ValueError, match="Unknown aspect"):
        main(["score", str(bad), "--model", str(tiny_checkpoint_dir), "--weights", "beauty=1"])


def test_parse_weights():
    assert parse_weights("text-to-video alignment=2, dynamic degree=0.5") == {"text-to-video alignment": 2.0, "dynamic degree": 0.5}


def test_resume_after_kill_scores_every_video_once(tmp_path, tiny_checkpoint_dir):
    root = tmp_path / "many"
    for i in range(24):
        write_test_video(root / f"clip_{i:02d}.mp4", 8, 32, 32)
    out = root / "evaluation_results.csv"
    partial = root / ".evaluation_results.csv.rank0.partial.csv"
    command = [sys.executable, "-m", "videoscore_reward", "score", str(root), "--model", str(tiny_checkpoint_dir),
               "--batch-size", "1", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.read_text().count("\n") < 4):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists(), "the run was killed before the end, so no final table should exist"
    first = pd.read_csv(partial)
    assert 3 <= len(first) < 24

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = pd.read_csv(out)
    assert table["video_name"].tolist() == [f"clip_{i:02d}.mp4" for i in range(24)]
    kept = table.set_index("video_name").loc[first["video_name"], "reward"].values
    assert (kept == first["reward"].values).all(), "rows scored before the kill are kept as they were"
    assert not partial.exists()


def test_two_process_sharded_run_matches_single_process(tmp_path, tiny_checkpoint_dir):
    root = tmp_path / "shard"
    for i in range(5):
        write_test_video(root / f"v{i}.mp4", 6, 32, 32)
    (root / "v5_broken.mp4").write_text("x")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "videoscore_reward", "score", str(root),
         "--model", str(tiny_checkpoint_dir), "--out", str(tmp_path / "sharded.csv"), "--no-progress"],
        env=env, check=True, capture_output=True, timeout=300,
    )
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--out", str(tmp_path / "single.csv"), "--no-progress"]) == 0
    sharded = pd.read_csv(tmp_path / "sharded.csv", keep_default_na=False)
    single = pd.read_csv(tmp_path / "single.csv", keep_default_na=False)
    assert sharded["video_name"].tolist() == single["video_name"].tolist() == [f"v{i}.mp4" for i in range(5)] + ["v5_broken.mp4"]
    ok = single["error"] == ""
    torch.testing.assert_close(torch.tensor(sharded.loc[ok, "reward"].astype(float).values),
                               torch.tensor(single.loc[ok, "reward"].astype(float).values), atol=1e-4, rtol=0)
    assert sharded.loc[~ok, "error"].str.contains("not a readable video").all()
    assert not list(tmp_path.glob(".*partial*"))
