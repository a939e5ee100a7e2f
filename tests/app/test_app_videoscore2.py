"""The app's requests with a VideoScore2 model: its three aspects, its 1-5 scale, its weights."""

from videoscore_reward import VideoScoreReward
from videoscore_reward.app.requests import compare_videos, score_videos
from videoscore_reward.testing import write_test_video


def test_score_and_compare_use_the_models_aspects(tmp_path):
    reward = VideoScoreReward.from_pretrained("tiny-random-videoscore2", device="cpu")
    video = str(write_test_video(tmp_path / "a.mp4", 16, 64, 48, fps=8))
    weights = [[0.0], [1.0], [0.0]]  # one slider per aspect: text-to-video alignment only
    messages, tables, charts, galleries = score_videos(reward, 50, [video], ["a cat"], weights)
    assert messages[0].endswith("Scored a.mp4.</div>") and "score (1-5)" in tables[0]
    assert list(charts[0]["aspect"]) == list(reward.aspects) and len(galleries[0]) == 4  # 2 s at 2 fps
    alignment = float(charts[0]["score"][1])
    assert f'<th class="vs-reward">{alignment:.3f}</th>' in tables[0]
    messages, tables, downloads = compare_videos(reward, 50, tmp_path, [[video, video]], ["a cat"], weights)
    assert list(tables[0].columns) == ["rank", "video", *reward.aspects, "reward", "error"]
    assert tables[0]["reward"].tolist() == [round(alignment, 3)] * 2
