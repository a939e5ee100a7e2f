"""`compare`: reward hacking is flagged where one aspect falls while the reward rises, and only there."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from videoscore_reward import ASPECTS
from videoscore_reward.cli import main
from videoscore_reward.evaluation import TableError, compare


def scored_run(path, scores: dict, prompts, names=None):
    """A table as `videoscore-reward score` writes it: aspects, reward = their mean, prompt, error."""
    table = pd.DataFrame({"video_name": names or [f"v{i}.mp4" for i in range(len(prompts))], **scores})
    table["reward"] = table[list(scores)].mean(axis=1)
    table["prompt"], table["num_frames"], table["error"] = prompts, 16, ""
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def runs(tmp_path):
    """Before/after runs of 30 prompts x 2 seeds: after fine-tuning, visual quality falls by 0.3 and
    dynamic degree rises by 0.9 (so the mean-of-aspects reward rises); one prompt gains most."""
    rng = np.random.default_rng(0)
    prompts = [f"prompt {i}" for i in range(30)] * 2
    before = {a: rng.uniform(1.5, 3.5, 60) for a in ASPECTS}
    after = {a: v + rng.normal(0, 0.05, 60) for a, v in before.items()}
    after["visual quality"] = after["visual quality"] - 0.3
    after["dynamic degree"] = after["dynamic degree"] + 0.9
    after["text-to-video alignment"][[7, 37]] += 1.5  # "prompt 7" gains most
    return scored_run(tmp_path / "base.csv", before, prompts), scored_run(tmp_path / "tuned.csv", after, prompts)


def test_an_aspect_that_falls_while_the_reward_rises_is_flagged(runs, tmp_path, capsys):
    result = compare(*runs, n_resamples=300)
    assert result.run_names == ("base", "tuned") and result.paired and result.key == "prompt"
    assert result.shifts["reward"].diff > 0 and result.shifts["reward"].ci95[0] > 0
    vq = result.shifts["visual quality"]
    assert vq.diff == pytest.approx(-0.3, abs=0.03) and vq.ci95[1] < 0 and vq.p_value < 1e-6
    assert (vq.n_a, vq.n_b, vq.test) == (30, 30, "wilcoxon signed-rank")
    assert len(result.flags) == 1 and result.flags[0].startswith("visual quality fell by 0.3")
    assert result.gained[0]["prompt"] == "prompt 7"
    assert result.gained[0]["change"]["text-to-video alignment"] == pytest.approx(1.5, abs=0.1)

    out = tmp_path / "report"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(out), "--resamples", "300", "--fail-on-hacking"]) == 3
    assert "REWARD HACKING? visual quality fell by" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["reward_hacking"] is True and report["paired_by"] == "prompt" and report["n_paired"] == 30
    assert report["shifts"]["visual quality"]["diff"] == pytest.approx(vq.diff)
    html = (out / "report.html").read_text()
    assert "Possible reward hacking" in html and html.count('<figure data-aspect="') == len(ASPECTS)
    for png in [*(f"violin_{a.replace(' ', '_')}.png" for a in ASPECTS), "violin_reward.png", "per_prompt_reward.png"]:
        with Image.open(out / png) as image:
            assert image.format == "PNG" and image.size == (640, 480)


def test_identical_distributions_are_not_flagged(runs, tmp_path):
    same = pd.read_csv(runs[0]).sample(frac=1, random_state=0)  # the same rows, another order
    same.to_csv(tmp_path / "again.csv", index=False)
    result = compare(runs[0], tmp_path / "again.csv", n_resamples=100)
    assert result.flags == [] and not result.reward_hacking
    assert all(s.diff == 0 and s.p_value == 1.0 for s in result.shifts.values())
    assert result.gained == [] and result.lost == []


def test_runs_without_common_prompts_are_compared_unpaired(tmp_path):
    rng = np.random.default_rng(1)
    aspects = ["visual quality", "text alignment", "physical consistency"]  # VideoScore2's three
    a = scored_run(tmp_path / "a.csv", {k: rng.uniform(1, 5, 40) for k in aspects}, [f"p{i}" for i in range(40)])
    b = scored_run(tmp_path / "b.csv", {k: rng.uniform(1, 5, 40) for k in aspects}, [f"q{i}" for i in range(40)])
    result = compare(a, b, n_resamples=100)
    assert not result.paired and result.aspects == aspects
    assert result.shifts["reward"].test == "mann-whitney u" and result.shifts["reward"].n_a == 40
    written = result.write(tmp_path / "out")
    assert {p.name for p in written} == {"report.json", "report.html", "violin_reward.png",
                                         *(f"violin_{k.replace(' ', '_')}.png" for k in aspects)}


def test_weights_recompute_the_reward(runs):
    # Optimising dynamic degree alone: the reward rose by its +0.9; visual quality is flagged still.
    result = compare(*runs, weights={"dynamic degree": 1.0}, n_resamples=100)
    assert result.shifts["reward"].diff == pytest.approx(0.9, abs=0.03)
    with pytest.raises(TableError, match=r"weights name \['colour'\], not among its aspects"):
        compare(*runs, weights={"colour": 1.0})


def test_bad_runs_are_one_line_with_exit_code_2(runs, tmp_path, capsys):
    other = tmp_path / "v2.csv"
    pd.DataFrame({"video_name": ["a.mp4"], "visual quality": [3.0], "text alignment": [2.0]}).to_csv(other, index=False)
    with pytest.raises(TableError, match=r"scores \[.*\] but .*v2\.csv scores \['visual quality', 'text alignment'\]"):
        compare(runs[0], other)
    (tmp_path / "failed.csv").write_text("video_name,visual quality,error\na.mp4,,VideoLoadError: bad\n")
    for bad in (other, tmp_path / "missing.csv", tmp_path / "failed.csv"):
        assert main(["compare", str(runs[0]), str(bad), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["compare", str(runs[0]), str(tmp_path / "failed.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "failed.csv has no scored rows" in capsys.readouterr().err


def test_prompts_that_look_missing_are_prompts(tmp_path):
    prompts = ["NA", "None", "nan", "null"]
    a = scored_run(tmp_path / "a.csv", {"visual quality": [1.0, 2.0, 3.0, 4.0]}, prompts, names=["NA", "b", "c", "d"])
    b = scored_run(tmp_path / "b.csv", {"visual quality": [1.5, 2.5, 3.5, 4.5]}, prompts, names=["NA", "b", "c", "d"])
    result = compare(a, b, n_resamples=50)
    assert result.key == "prompt" and sorted(result.per_prompt.index) == sorted(prompts)
    assert result.shifts["visual quality"].diff == pytest.approx(0.5)
