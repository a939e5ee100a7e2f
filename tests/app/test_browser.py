"""End to end: `launch` in its own process on the tiny checkpoint, driven in headless Chromium.

Uses Debian's chromium (/usr/bin/chromium, installed by `python -m videoscore_reward.testing.system_tools`)
through Playwright; no browser download. Screenshots go to tests/app/artifacts/.
"""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_helpers import free_port, library_scores, shown
from playwright.sync_api import expect, sync_playwright

import videoscore_reward
from videoscore_reward import ASPECTS
from videoscore_reward.testing.system_tools import CHROMIUM

ARTIFACTS = Path(__file__).parent / "artifacts"
PROMPT = "a colourful gradient sliding diagonally"
MAX_UPLOAD_MB = 1


def _wait_until_serving(process: subprocess.Popen, url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with code {process.returncode} before serving:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the app did not answer at {url} within {timeout:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def app_url(tiny_checkpoint_dir, tmp_path_factory):
    """`launch(tiny checkpoint, port=<free>)` in a subprocess, as `videoscore-reward app` runs it; stopped after."""
    port = free_port()
    log = tmp_path_factory.mktemp("app-log") / "server.log"
    code = (
        "import sys; from videoscore_reward.app import launch; "
        f"launch(sys.argv[1], port={port}, device='cpu', max_upload_mb={MAX_UPLOAD_MB})"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(videoscore_reward.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(tiny_checkpoint_dir)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(process, url, log)
        # launch's default host: the app listens on the loopback interface only.
        assert f"Running on local URL:  http://127.0.0.1:{port}\n" in log.read_text()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode is not None  # the server is gone


@pytest.fixture
def page(app_url):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(30_000)
            page.goto(app_url)
            yield page
        finally:
            browser.close()


def _upload(page, path: Path) -> None:
    """Pick `path` in the video input and wait until the server has received it."""
    with page.expect_response(lambda response: "/upload" in response.url and response.ok):
        page.locator("#vs-video input[type=file]").set_input_files(str(path))


def test_scores_on_the_page_equal_the_library(page, app_videos, tiny_reward):
    expect(page.locator("#vs-tiny-note")).to_contain_text("its scores are meaningless")
    _upload(page, app_videos["a"])
    expect(page.locator("#vs-video video")).to_be_visible()
    page.locator("#vs-prompt textarea").fill(PROMPT)
    page.locator("#vs-score-button").click()

    cells = page.locator("#vs-score-table td.vs-score")
    expect(cells).to_have_count(len(ASPECTS))
    expect(page.locator("#vs-frames img")).to_have_count(tiny_reward.num_frames)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "score_a_video.png", full_page=True)

    expected = library_scores(tiny_reward, app_videos["a"], PROMPT)
    assert [cells.nth(i).get_attribute("data-aspect") for i in range(len(ASPECTS))] == list(ASPECTS)
    assert cells.all_inner_texts() == [shown(s) for s in expected]
    assert page.locator("#vs-score-table .vs-reward").inner_text() == shown(sum(expected) / len(expected))
    expect(page.locator("#vs-score-message")).to_have_text("Scored gradient.mp4.")


def test_bad_uploads_show_a_readable_message(page, app_videos, tmp_path):
    # launch sets Gradio's upload limit: the browser refuses the file before it is sent.
    too_large = tmp_path / "huge.mp4"
    too_large.write_bytes(os.urandom(int(1.5 * MAX_UPLOAD_MB * 1024 * 1024)))
    page.locator("#vs-video input[type=file]").set_input_files(str(too_large))
    expect(page.get_by_text(re.compile(r"exceed the maximum allowed size of 1(\.0)? ?mb", re.IGNORECASE))).to_be_visible()

    page.locator("#vs-prompt textarea").fill(PROMPT)
    _upload(page, app_videos["text"])
    page.locator("#vs-score-button").click()
    expect(page.locator("#vs-score-message")).to_contain_text("notes.mp4 is not a readable video file")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "bad_upload.png", full_page=True)
    assert "Traceback" not in page.content()


def test_compare_ranks_videos_and_offers_the_csv(page, app_videos, tiny_reward, tmp_path):
    page.get_by_role("tab", name="Compare", exact=True).click()  # not "Compare runs"
    with page.expect_response(lambda response: "/upload" in response.url and response.ok):
        page.locator("#vs-compare-files input[type=file]").set_input_files([str(app_videos["a"]), str(app_videos["b"])])
    page.locator("#vs-compare-prompt textarea").fill(PROMPT)
    page.locator("#vs-compare-button").click()
    expect(page.locator("#vs-compare-message")).to_contain_text("Ranked 2 video(s)")

    rewards = {
        app_videos[k].name: sum(library_scores(tiny_reward, app_videos[k], PROMPT)) / len(ASPECTS) for k in ("a", "b")
    }
    best = max(rewards, key=rewards.get)
    expect(page.locator("#vs-compare-message")).to_contain_text(f"best: {best}.")
    with page.expect_download() as download:
        page.locator("#vs-compare-csv a").first.click()
    csv = download.value.path().read_text().splitlines()
    assert csv[0] == ",".join(["rank", "video", *ASPECTS, "reward", "prompt", "error"])
    assert [line.split(",")[1] for line in csv[1:]] == sorted(rewards, key=rewards.get, reverse=True)


def test_compare_runs_shows_the_report_with_one_plot_per_aspect(page, tmp_path):
    import pandas as pd

    prompts = [f"prompt {i}" for i in range(10)]
    for name, shift in (("base", 0.0), ("tuned", 0.4)):
        table = pd.DataFrame({"video_name": [f"{p}.mp4" for p in prompts]})
        for k, aspect in enumerate(ASPECTS):  # visual quality falls, the others rise: flagged
            table[aspect] = [1.5 + (i * (k + 3) % 10) / 5 + (-shift if k == 0 else shift) for i in range(10)]
        table["reward"], table["prompt"], table["error"] = table[list(ASPECTS)].mean(axis=1), prompts, ""
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    page.get_by_role("tab", name="Compare runs").click()
    for element, name in (("#vs-run-a", "base"), ("#vs-run-b", "tuned")):
        with page.expect_response(lambda response: "/upload" in response.url and response.ok):
            page.locator(f"{element} input[type=file]").set_input_files(str(tmp_path / f"{name}.csv"))
    page.locator("#vs-runs-button").click()
    expect(page.locator("#vs-runs-message")).to_contain_text("Compared base with tuned. 1 aspect(s) flagged")
    figures = page.locator("#vs-runs-report figure[data-aspect]")
    expect(figures).to_have_count(len(ASPECTS))
    assert [figures.nth(i).get_attribute("data-aspect") for i in range(len(ASPECTS))] == list(ASPECTS)
    expect(page.locator("#vs-runs-report #vs-verdict")).to_contain_text("visual quality fell by 0.400")
    widths = page.eval_on_selector_all("#vs-runs-report img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and set(widths) == {640}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "compare_runs.png", full_page=True)
