"""The app's request handling without Gradio or a browser."""

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
