"""`evaluate`: correlations equal scipy's, pairwise accuracy equals a hand count, intervals behave."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from videoscore_reward.cli import main
from videoscore_reward.evaluation import TableError, evaluate
from videoscore_reward.evaluation.metrics import correlations

# A VideoScore2-like table: the aspects come from the CSV, not from the v1 list.
ASPECTS = ["visual quality", "text alignment", "physical consistency"]


@pytest.fixture
def scored(tmp_path):
    """40 scored videos (plus one failed row), ratings that are a monotone transform plus noise of the
    scores (shuffled, one video unrated), and the arrays the correlations must be computed on."""
    rng = np.random.default_rng(0)
    names = [f"clip_{i:02d}.mp4" for i in range(40)]
    scores = pd.DataFrame({"video_name": names, **{a: rng.uniform(1, 5, 40) for a in ASPECTS}})
    scores["reward"] = scores[ASPECTS].mean(axis=1)
    scores["prompt"], scores["num_frames"], scores["error"] = "a prompt", 16, ""
    failed = {"video_name": "broken.mp4", "prompt": "x", "num_frames": 0, "error": "VideoLoadError: not a video"}
    scores = pd.concat([scores, pd.DataFrame([failed])], ignore_index=True)
    scores.to_csv(tmp_path / "scores.csv", index=False)

    labels = pd.DataFrame({"video_name": names[1:]})  # clip_00 is not rated
    labels["visual quality"] = np.exp(scores["visual quality"][1:40].to_numpy()) + rng.normal(0, 4, 39)
    labels["text alignment"] = 5 - scores["text alignment"][1:40].to_numpy() ** 2 / 8 + rng.normal(0, 0.3, 39)  # decreasing
    labels = labels.sample(frac=1, random_state=1)  # another order than the scores
    labels.to_csv(tmp_path / "labels.csv", index=False)
    expected = {a: (scores.set_index("video_name").loc[labels["video_name"], a].to_numpy(), labels[a].to_numpy())
                for a in ("visual quality", "text alignment")}
    return tmp_path, expected


def test_report_equals_scipy_on_the_same_arrays(scored):
    folder, expected = scored
    assert main(["evaluate", str(folder / "scores.csv"), str(folder / "labels.csv"), "--out", str(folder / "out"),
                 "--resamples", "200"]) == 0
    report = json.loads((folder / "out" / "report.json").read_text())
    assert set(report) == {"aspects"}  # no pairs file: no "pairwise"
    assert list(report["aspects"]) == list(expected)  # physical consistency is not rated: left out
    for aspect, (x, y) in expected.items():
        row = report["aspects"][aspect]
        assert row["n"] == 39
        assert row["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert row["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
        assert row["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
        low, high = row["spearman_ci95"]
        assert low <= row["spearman"] <= high
    assert report["aspects"]["visual quality"]["spearman"] > 0.8
    assert report["aspects"]["text alignment"]["spearman"] < -0.8

    summary = (folder / "out" / "summary.md").read_text()
    assert "| visual quality | 39 |" in summary and "1 row(s)" in summary
    for name in ("scatter_visual_quality.png", "scatter_text_alignment.png", "calibration.png"):
        with Image.open(folder / "out" / name) as image:
            assert image.format == "PNG" and image.size == (640, 480)


def test_pairwise_accuracy_equals_a_hand_count(tmp_path):
    # One aspect, so the mean of the aspects is that score.
    scores = {"a1": 3.0, "b1": 2.0, "a2": 2.0, "b2": 3.0, "a3": 2.50, "b3": 2.52, "a4": 2.0, "b4": 3.0,
              "a5": 3.00, "b5": 2.95, "a6": 1.0, "b6": 2.0}
    pd.DataFrame({"video_name": list(scores), "visual quality": list(scores.values())}).to_csv(tmp_path / "s.csv", index=False)
    preference = ["a", "A", " tie", "tie", "a", "b"]
    pd.DataFrame({"video_a": [f"a{i}" for i in range(1, 7)], "video_b": [f"b{i}" for i in range(1, 7)],
                  "preference": preference}).to_csv(tmp_path / "pairs.csv", index=False)
    # Margin 0.1. With ties: 1 right (3 > 2 by 1), 2 wrong, 3 right (|0.02| < 0.1), 4 wrong (|1| >= 0.1),
    # 5 wrong (ahead by 0.05 < 0.1: the model calls it a tie), 6 right -> 3/6.
    # Without ties (pairs 1, 2, 5, 6): right, wrong, right (strictly higher), right -> 3/4.
    report = evaluate(tmp_path / "s.csv", [tmp_path / "pairs.csv"], tie_margin=0.1, n_resamples=200).report
    assert set(report) == {"pairwise"}
    pairwise = report["pairwise"]
    assert pairwise["accuracy_with_ties"] == pytest.approx(3 / 6)
    assert pairwise["accuracy_without_ties"] == pytest.approx(3 / 4)
    assert (pairwise["n_pairs"], pairwise["n_pairs_without_ties"]) == (6, 4)
    low, high = pairwise["accuracy_with_ties_ci95"]
    assert 0 <= low <= 0.5 <= high <= 1


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_items():
    rng = np.random.default_rng(3)
    widths = []
    for n in (30, 300):
        x = rng.uniform(1, 4, n)
        y = np.log(x) + rng.normal(0, 0.3, n)
        report = correlations(x, y, n_resamples=300, seed=0)
        for name in ("spearman", "kendall", "pearson"):
            low, high = report[f"{name}_ci95"]
            assert low < report[name] < high
        widths.append(report["spearman_ci95"][1] - report["spearman_ci95"][0])
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(n): ten times the items, about a third of the width


def test_constant_scores_give_undefined_statistics_not_a_crash():
    report = correlations(np.full(10, 2.0), np.arange(10.0), n_resamples=50)
    assert report["spearman"] is None and report["spearman_ci95"] == [None, None] and report["n"] == 10


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("video_name,colour\nclip_01.mp4,3\n", r"labels\.csv rates \['colour'\], none of which is an aspect"),
        ("video_name,visual quality\nother.mp4,3\n", r"none of the 1 videos rated in .*labels\.csv is scored"),
        ("video_name,visual quality\nclip_01.mp4,good\n", r"labels\.csv: column 'visual quality' is not numeric"),
        ("video_a,video_b,preference\nclip_01.mp4,clip_02.mp4,maybe\n", r"preference must be one of \['a', 'b', 'tie'\]"),
        ("video_a,video_b\nclip_01.mp4,clip_02.mp4\n", r"a pairs file needs columns .* missing \['preference'\]"),
        ("", r"labels\.csv is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"labels\.csv is not a readable CSV"),
    ],
)
def test_bad_labels_are_one_line_with_exit_code_2(scored, capsys, labels, message):
    folder, _ = scored
    path = folder / "labels.csv"
    path.write_bytes(labels if isinstance(labels, bytes) else labels.encode())
    with pytest.raises(TableError, match=message):
        evaluate(folder / "scores.csv", [path])
    assert main(["evaluate", str(folder / "scores.csv"), str(path), "--out", str(folder / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_scores_without_aspect_columns_or_with_a_video_twice_are_refused(tmp_path):
    (tmp_path / "s.csv").write_text("video_name,prompt\na.mp4,a cat\n")
    (tmp_path / "l.csv").write_text("video_name,visual quality\na.mp4,3\n")
    with pytest.raises(TableError, match=r"s\.csv has no numeric aspect score columns"):
        evaluate(tmp_path / "s.csv", [tmp_path / "l.csv"])
    (tmp_path / "s.csv").write_text("video_name,visual quality\na.mp4,3.1\nb.mp4,2\na.mp4,2.9\n")
    with pytest.raises(TableError, match=r"s\.csv: video 'a\.mp4' is scored more than once"):
        evaluate(tmp_path / "s.csv", [tmp_path / "l.csv"])


def test_without_the_eval_extra_the_commands_say_what_to_install(monkeypatch, capsys, tmp_path):
    from videoscore_reward import extras

    monkeypatch.setattr(extras, "is_available", lambda module: module != "scipy")
    for command in (["evaluate", "s.csv", "l.csv"], ["compare", "a.csv", "b.csv"]):
        assert main([*command, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: videoscore-reward {command[0]} needs scipy (the [eval] extra): pip install")
        assert err.count("\n") == 1
