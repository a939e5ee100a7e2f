import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from videoscore_reward import ASPECTS, load_video
from videoscore_reward.cli import main, weights_argument
from videoscore_reward.folder import COLUMNS, find_videos, prompt_from_file_name, read_table
from videoscore_reward.testing import make_frames, write_audio_only, write_test_video, write_truncated_video

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
    write_truncated_video(root / "cut.mp4", tmp_path / "whole.mp4")
    write_audio_only(root / "sound.mp4")
    write_test_video(root / "clips" / "broadcast.ts", 10, codec="mpeg2video")
    write_test_video(root / "phone.m4v", 10)
    (root / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # a broken link gets a row, not silence
    return root


def test_finds_videos_recursively_sorted(folder):
    names = [p.relative_to(folder).as_posix() for p in find_videos(folder)]
    assert names == sorted(["LOUD.MOV", "anim.gif", "clips/broadcast.ts", "clips/fox.webm", "cut.mp4", "empty.mp4",
                            "gone.mp4", "notes.mkv", "phone.m4v", "sound.mp4", SEED_NAME])


def test_score_folder_rows_scores_prompts_and_errors(folder, tiny_checkpoint_dir, tiny_reward, capsys, recwarn):
    code = main(["score", str(folder), "--model", str(tiny_checkpoint_dir), "--batch-size", "2", "--no-progress"])
    assert code == 0
    table = read_table(folder / "evaluation_results.csv")
    assert list(table.columns) == COLUMNS
    assert table["video_name"].tolist() == [p.relative_to(folder).as_posix() for p in find_videos(folder)]
    rows = table.set_index("video_name")
    assert rows.loc["clips/fox.webm", "prompt"] == "a red fox in the snow"
    assert rows.loc[SEED_NAME, "prompt"] == "solo,Xiangling, carry money in a wallet  genshin impact  ,1girl,highres,"
    assert "is empty" in rows.loc["empty.mp4", "error"] and "not a readable video" in rows.loc["notes.mkv", "error"]
    assert "no video stream (streams found: audio)" in rows.loc["sound.mp4", "error"]
    assert "Video file not found" in rows.loc["gone.mp4", "error"]
    for name in ("empty.mp4", "notes.mkv", "sound.mp4", "gone.mp4"):
        assert rows.loc[name, "num_frames"] == 0 and rows.loc[name, ["reward", *ASPECTS]].isna().all()
    # A truncated file is scored from the frames that decoded, and flagged in its row, not on the console.
    assert "cut.mp4 looks damaged: its data ends at" in rows.loc["cut.mp4", "error"]
    assert 0 < rows.loc["cut.mp4", "num_frames"] <= 16 and rows.loc["cut.mp4", ["reward", *ASPECTS]].notna().all()
    assert not [w for w in recwarn if "damaged" in str(w.message)]
    for name in ("LOUD.MOV", "anim.gif", "clips/fox.webm", "clips/broadcast.ts", "phone.m4v", SEED_NAME):
        assert rows.loc[name, "error"] == ""
        frames = load_video(folder / name, 16)
        expected = tiny_reward([frames], [rows.loc[name, "prompt"]])
        got = torch.tensor([float(rows.loc[name, a]) for a in ASPECTS])
        torch.testing.assert_close(got, expected.scores[0], atol=1e-4, rtol=0)
        assert abs(float(rows.loc[name, "reward"]) - expected.rewards[0].item()) < 1e-4
        assert rows.loc[name, "num_frames"] == frames.shape[0]
    err = capsys.readouterr().err
    assert "scored 7 (1 flagged as damaged), failed 4" in err and "videos/s" in err
    assert "  flagged: cut.mp4: " in err and "  failed: sound.mp4: VideoLoadError" in err
    assert "Loading weights" not in err  # --no-progress silences the model-loading bars too
    assert "meaningless" in err  # the tiny checkpoint says so


def test_truncation_is_reported_in_the_row_of_the_video_that_has_it(tmp_path, tiny_checkpoint_dir):
    # Decode threads run side by side; each truncation warning must land in its own video's row.
    root = tmp_path / "mixed"
    for i in range(6):
        write_test_video(root / f"good_{i}.mp4", 12, 32, 32)
        write_truncated_video(root / f"cut_{i}.mp4", tmp_path / f"whole_{i}.mp4")
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--decode-workers", "4", "--no-progress"]) == 0
    rows = pd.read_csv(root / "evaluation_results.csv", keep_default_na=False).set_index("video_name")
    for i in range(6):
        assert rows.loc[f"good_{i}.mp4", "error"] == ""
        assert rows.loc[f"cut_{i}.mp4", "error"].startswith(f"{root / f'cut_{i}.mp4'} looks damaged")


def test_progress_bar_and_tiny_random_by_name(tmp_path, capsys):
    root = tmp_path / "few"
    for i in range(3):
        write_test_video(root / f"v{i}.mp4", 8, 32, 32)
    assert main(["score", str(root), "--model", "tiny-random"]) == 0
    err = capsys.readouterr().err
    assert "note: tiny-random is a tiny random checkpoint: its scores are meaningless." in err
    assert "3/3" in err and "videos/s" in err  # the tqdm bar
    assert len(pd.read_csv(root / "evaluation_results.csv")) == 3


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
    model = ["--model", str(tiny_checkpoint_dir), "--no-progress"]
    assert main(["score", str(bad), *model]) == 1
    assert "error: no video could be scored" in capsys.readouterr().err
    assert len(pd.read_csv(bad / "evaluation_results.csv")) == 1, "the table still says what went wrong"
    (tmp_path / "nothing").mkdir()
    assert main(["score", str(tmp_path / "nothing"), *model]) == 1
    err = capsys.readouterr().err
    assert "error: no videos (.mp4, .m4v, .mov, .mkv, .webm, .avi, .gif, " in err
    assert "results in" not in err, "no table is written for an empty folder, so none is named"
    assert list((tmp_path / "nothing").iterdir()) == [], "no table, no header-only partial file"
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    write_truncated_video(damaged / "cut.mp4", tmp_path / "whole.mp4")
    assert main(["score", str(damaged), *model]) == 0, "a damaged file still scored is not a failed run"

    assert main(["score", str(tmp_path / "missing"), *model]) == 2
    assert main(["score", str(bad), *model, "--out", str(tmp_path / "x.json")]) == 2
    assert main(["score", str(bad), "--model", str(tmp_path / "no-such-model")]) == 2
    err = capsys.readouterr().err
    assert "cannot load the model" in err and "Traceback" not in err
    (tmp_path / "prompts.csv").write_text("name,text\na,b\n")
    assert main(["score", str(bad), *model, "--prompts-csv", str(tmp_path / "prompts.csv")]) == 2
    assert "needs a 'prompt' column" in capsys.readouterr().err
    for wrong in (["--weights", "visual quality"], ["--weights", "beauty=1"], ["--weights", "visual quality=-1"],
                  ["--batch-size", "0"], ["--num-frames", "-3"], ["--decode-workers", "x"], ["--dtype", "int8"],
                  ["--prompt", "a", "--prompts-csv", "p.csv"]):
        with pytest.raises(SystemExit, match="^2$") as info:
            main(["score", str(bad), *wrong])
        assert info.value.code == 2, wrong
    assert "Unknown aspect(s) in weights: ['beauty']" in capsys.readouterr().err


def test_weights_argument():
    assert weights_argument("text-to-video alignment=2, dynamic degree=0.5") == {"text-to-video alignment": 2.0, "dynamic degree": 0.5}


def test_text_survives_the_table(tmp_path, tiny_checkpoint_dir):
    root = tmp_path / "na"
    write_test_video(root / "NA.mp4", 8, 32, 32)
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--prompt", "None", "--no-progress"]) == 0
    row = read_table(root / "evaluation_results.csv").iloc[0]
    assert (row["video_name"], row["prompt"], row["error"]) == ("NA.mp4", "None", "")


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


def test_resume_keeps_complete_rows_of_every_partial_file(tmp_path, tiny_checkpoint_dir):
    # What a killed 3-process run leaves: rank 2's last row cut off mid-line.
    root = tmp_path / "left"
    for i in range(4):
        write_test_video(root / f"v{i}.mp4", 8, 32, 32)
    out = root / "evaluation_results.csv"
    header = ",".join(f'"{c}"' if " " in c else c for c in COLUMNS)
    done = "v1.mp4,1,1,1,1,1,1.0,kept,16,\n"
    (root / ".evaluation_results.csv.rank1.partial.csv").write_text(header + "\n" + done)
    (root / ".evaluation_results.csv.rank2.partial.csv").write_text(header + "\n" + "v2.mp4,1,1,1,1,1,")
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    table = read_table(out)
    assert table["video_name"].tolist() == ["v0.mp4", "v1.mp4", "v2.mp4", "v3.mp4"]
    assert table.set_index("video_name").loc["v1.mp4", "prompt"] == "kept", "done rows are not scored again"
    assert (table["error"] == "").all() and table["reward"].notna().all()
    assert not list(root.glob(".*partial*"))


def test_two_process_sharded_run_matches_single_process(tmp_path, tiny_checkpoint_dir):
    # Rank 1 gets v1 and v3, both broken: it scores nothing itself, yet the run succeeds as a whole.
    root = tmp_path / "shard"
    for i in (0, 2, 4, 5):
        write_test_video(root / f"v{i}.mp4", 6, 32, 32)
    for i in (1, 3):
        (root / f"v{i}.mp4").write_text("broken")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "videoscore_reward", "score", str(root),
         "--model", str(tiny_checkpoint_dir), "--out", str(tmp_path / "sharded.csv"), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert launched.returncode == 0, launched.stderr
    # One summary, for both processes.
    assert launched.stderr.count("scored 4, failed 2, skipped 0") == 1, launched.stderr
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--out", str(tmp_path / "single.csv"), "--no-progress"]) == 0
    sharded = read_table(tmp_path / "sharded.csv")
    single = read_table(tmp_path / "single.csv")
    assert sharded["video_name"].tolist() == single["video_name"].tolist() == [f"v{i}.mp4" for i in range(6)]
    ok = single["error"] == ""
    assert ok.tolist() == [True, False, True, False, True, True]
    torch.testing.assert_close(torch.tensor(sharded.loc[ok, "reward"].values),
                               torch.tensor(single.loc[ok, "reward"].values), atol=1e-4, rtol=0)
    assert sharded.loc[~ok, "error"].str.contains("not a readable video").all()
    assert not list(tmp_path.glob(".*partial*"))


def test_hostile_names_and_prompts_round_trip_escaped(tmp_path, tiny_checkpoint_dir, capsys):
    # issue 11 items 4, 7: line breaks stay inside one quoted cell, formula starts get OWASP's
    # leading ', and resume and organize still map each row to its file.
    import csv

    root = tmp_path / "hostile"
    names = ["=HYPERLINK(1).mp4", "a\rb.mp4", "c\nd.mp4", "'q.mp4", "@x.mp4", "+1.mp4", "-2.mp4"]
    for seed, name in enumerate(names):
        write_test_video(root / name, 4, 32, 32, frames=make_frames(4, 32, 32, seed=seed))
    command = ["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]
    assert main(command) == 0
    out = root / "evaluation_results.csv"
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = sorted(names)  # find_videos' order
    assert [r["video_name"] for r in rows] == ["'" + n if n[0] in "=+-@'" else n for n in expected]
    assert all(not r["prompt"].startswith(("=", "+", "-", "@")) for r in rows)
    assert read_table(out)["video_name"].tolist() == expected
    capsys.readouterr()
    assert main(command) == 0
    assert f"skipped {len(names)} already done" in capsys.readouterr().err

    dataset = tmp_path / "dataset"
    assert main(["organize", str(root), "--scores", str(out), "--out", str(dataset)]) == 0
    with open(dataset / "metadata.csv", newline="", encoding="utf-8") as f:
        metadata = list(csv.DictReader(f))
    assert sorted(r["original_video_name"] for r in metadata) == sorted(["'" + n if n[0] in "=+-@'" else n for n in names])


def test_a_torn_quoted_last_row_is_dropped_with_a_warning(tmp_path, tiny_checkpoint_dir):
    # issue 11 item 10: the cut falls inside a quoted line break.
    root = tmp_path / "torn"
    for i in range(2):
        write_test_video(root / f"v{i}.mp4", 4, 32, 32)
    header = ",".join(f'"{c}"' if " " in c else c for c in COLUMNS)
    partial = root / ".evaluation_results.csv.rank0.partial.csv"
    partial.write_text(header + "\r\n" + "v0.mp4,1,1,1,1,1,1.0,kept,16,\r\n" + '"v1.mp4",1,1,1,1,1,1.0,"a\nlong')
    with pytest.warns(UserWarning, match=r"dropped a torn last row \(\d+ bytes\) left by an interrupted run"):
        assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    table = read_table(root / "evaluation_results.csv")
    assert table["video_name"].tolist() == ["v0.mp4", "v1.mp4"] and table["prompt"][0] == "kept"
    assert table["reward"].notna().all()
