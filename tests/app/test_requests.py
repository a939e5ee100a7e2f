"""The app's request handling without Gradio or a browser."""

import re

import pandas as pd

from videoscore_reward import ASPECTS
from videoscore_reward.app.requests import compare_videos, score_videos
from app_helpers import library_scores, shown, table_numbers

EQUAL = [[1.0]] * len(ASPECTS)


def test_score_request_shows_the_library_scores_and_names_bad_uploads(tiny_reward, app_videos):
    messages, tables, charts, galleries = score_videos(
        tiny_reward, 10, [str(app_videos["a"]), str(app_videos["text"])], ["a gradient", "a gradient"],
        [[1.0, 1.0]] * len(ASPECTS),
    )
    expected = library_scores(tiny_reward, app_videos["a"], "a gradient")
    cells, reward_cell = table_numbers(tables[0])
    assert cells == [shown(v) for v in expected]
    assert reward_cell == shown(sum(expected) / len(expected))
    assert charts[0]["score"].tolist() == expected
    assert len(galleries[0]) == tiny_reward.num_frames
    assert "notes.mp4 is not a readable video file" in messages[1]
    assert str(app_videos["text"].parent) not in messages[1]  # never the server's path
    assert tables[1] == "" and charts[1] is None


def test_compare_request_ranks_and_writes_the_csv(tiny_reward, app_videos, tmp_path):
    files = [str(app_videos["a"]), str(app_videos["b"]), str(app_videos["empty"])]
    messages, tables, downloads = compare_videos(tiny_reward, 10, tmp_path, [files], ["a prompt"], EQUAL)
    table = tables[0]
    assert list(table["video"][:2]) in (["gradient.mp4", "other.webm"], ["other.webm", "gradient.mp4"])
    assert table["video"].iloc[-1] == "empty.mp4" and "empty" in table["error"].iloc[-1]
    assert table["reward"].iloc[0] >= table["reward"].iloc[1]
    written = pd.read_csv(downloads[0], keep_default_na=False)
    assert list(written["prompt"]) == ["a prompt"] * 3
    assert "1 could not be scored" in messages[0]


def test_a_huge_or_unreadable_upload_does_not_fail_its_batch_mates(tiny_reward, app_videos, huge_video, tmp_path):
    # issue 11 item 3: refused from the header, before decoding, with the size and the budget.
    budget = r"huge\.mkv: 16 frame\(s\) of 8192x8192 would take 3,072 MiB decoded, over the budget of 2,048 MiB"
    videos = [str(huge_video), str(app_videos["text"]), str(app_videos["a"])]
    messages, tables, _, _ = score_videos(tiny_reward, 10, videos, ["a gradient"] * 3, [[1.0] * 3] * len(ASPECTS))
    assert re.search(budget, messages[0]) and str(huge_video.parent) not in messages[0]
    assert "notes.mp4 is not a readable video file" in messages[1]
    assert table_numbers(tables[2])[0] == [shown(v) for v in library_scores(tiny_reward, app_videos["a"], "a gradient")]
    messages, tables, _ = compare_videos(tiny_reward, 10, tmp_path, [[str(huge_video), str(app_videos["a"])]],
                                         ["a gradient"], EQUAL)
    assert tables[0]["video"].tolist() == ["gradient.mp4", "huge.mkv"]
    assert re.search(budget, tables[0]["error"][1])


def test_only_paths_the_app_received_are_read(tiny_reward, app_videos, tmp_path):
    # What the app passes as `uploaded`: a path it did not receive is refused before it is opened.
    messages, tables, _, _ = score_videos(
        tiny_reward, 10, [str(app_videos["a"]), "/etc/passwd"], ["p", "p"], [[1.0, 1.0]] * len(ASPECTS),
        uploaded=lambda path: path == str(app_videos["a"]),
    )
    assert "Scored gradient.mp4." in messages[0]
    assert "passwd was not uploaded to this app" in messages[1] and tables[1] == ""


def test_ranking_csv_neutralises_formulas(tiny_reward, app_videos, tmp_path):
    import csv
    import shutil

    hostile = tmp_path / "=HYPERLINK(1)\r.mp4"
    shutil.copyfile(app_videos["a"], hostile)
    _, _, downloads = compare_videos(tiny_reward, 10, tmp_path, [[str(hostile)]], ["@SUM(1) a cat"], EQUAL)
    with open(downloads[0], newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["video"], row["prompt"]) == ("'=HYPERLINK(1)\r.mp4", "'@SUM(1) a cat")


def test_compare_runs_reads_only_uploaded_tables(tmp_path):
    from videoscore_reward.app.requests import compare_runs

    message, report, download = compare_runs(tmp_path, "/etc/passwd", "/etc/hostname", uploaded=lambda path: False)
    assert "passwd was not uploaded to this app" in message and report == "" and download is None
