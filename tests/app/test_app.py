"""The app's two endpoints driven over HTTP with gradio_client, on the tiny checkpoint, in-process."""

import html
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_helpers import free_port, library_scores, shown, table_numbers
from gradio_client import Client, handle_file
from gradio_client.utils import Status

from videoscore_reward import ASPECTS
from videoscore_reward.app import build_app
from videoscore_reward.app.ui import _serve

# gradio's own use of pandas 3 warns; nothing the app can change.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

PROMPT = "a colourful gradient sliding diagonally"
EQUAL = [1.0] * 5


class CountingReward:
    """The tiny reward, recording the batch size of every call; `hold` makes calls wait until set."""

    def __init__(self, reward):
        self._reward = reward
        self.batch_sizes: list[int] = []
        self.entered = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    def __getattr__(self, name):
        return getattr(self._reward, name)

    def __call__(self, videos, prompts, **kwargs):
        self.batch_sizes.append(len(videos))
        self.entered.set()
        self.hold.wait(timeout=30)
        return self._reward(videos, prompts, **kwargs)


@pytest.fixture(scope="module")
def served(tiny_reward):
    """The app on a free port: the tiny reward behind a counter, a 0.05 MB limit in the app itself
    (Gradio's own upload limit set higher so the app's message is what a too-large file gets)."""
    counting = CountingReward(tiny_reward)
    demo = build_app(counting, max_upload_mb=0.05)
    port = free_port()
    _serve(demo, host="127.0.0.1", port=port, share=False, max_upload_mb=10, prevent_thread_lock=True, quiet=True)
    try:
        yield counting, f"http://127.0.0.1:{port}/", Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def test_score_equals_library_and_weights_make_the_reward(served, tiny_reward, app_videos):
    counting, _, client = served
    weights = [2.0, 0.0, 1.0, 0.5, 0.0]
    message, table, chart, gallery = client.predict(
        handle_file(str(app_videos["a"])), PROMPT, *weights, api_name="/score"
    )
    expected = library_scores(tiny_reward, app_videos["a"], PROMPT)
    scores, reward = table_numbers(table)
    assert "Scored gradient.mp4." in message
    assert scores == [shown(s) for s in expected]
    assert reward == shown(np.dot(weights, expected) / sum(weights))
    assert [row[0] for row in chart["data"]] == list(ASPECTS)
    assert [row[1] for row in chart["data"]] == pytest.approx(expected, abs=1e-5)
    assert len(gallery) == tiny_reward.num_frames  # one thumbnail per sampled frame


@pytest.mark.parametrize(
    "upload, prompt, weights, match",
    [
        ("text", PROMPT, EQUAL, r"notes\.mp4 is not a readable video file"),
        ("empty", PROMPT, EQUAL, r"empty\.mp4 is empty \(0 bytes\), expected a video file\."),
        ("big", PROMPT, EQUAL, r"big\.mp4 is 0\.1 MB; uploads are limited to 0\.05 MB\."),
        (None, PROMPT, EQUAL, r"No video: upload a video file first\."),
        ("a", "   ", EQUAL, r"No prompt: type the text prompt"),
        ("a", PROMPT, [0.0] * 5, r"At least one aspect weight must be > 0"),
    ],
    ids=["not-a-video", "empty", "too-large", "no-video", "no-prompt", "zero-weights"],
)
def test_bad_requests_get_a_message_not_a_trace(served, app_videos, upload, prompt, weights, match):
    _, _, client = served
    video = handle_file(str(app_videos[upload])) if upload else None
    message, table, chart, gallery = client.predict(video, prompt, *weights, api_name="/score")
    assert 'class="vs-message vs-error"' in message
    assert re.search(match, html.unescape(message)), message
    assert "Traceback" not in message and "/tmp/" not in message  # no trace, no server paths
    assert table == "" and gallery == []  # no stale scores or frames left on the page


def test_compare_ranks_by_reward_and_the_csv_has_full_precision(served, tiny_reward, app_videos, tmp_path):
    _, _, client = served
    files = [handle_file(str(app_videos[k])) for k in ("a", "text", "b")]
    message, ranking, csv_path = client.predict(files, PROMPT, *EQUAL, api_name="/compare")

    expected = {app_videos[k].name: library_scores(tiny_reward, app_videos[k], PROMPT) for k in ("a", "b")}
    rewards = {name: float(np.mean(scores)) for name, scores in expected.items()}
    order = sorted(rewards, key=rewards.get, reverse=True)
    assert f"Ranked 2 video(s); best: {order[0]}. 1 could not be scored" in message

    table = pd.read_csv(csv_path).fillna({"error": ""})
    assert list(table.columns) == ["rank", "video", *ASPECTS, "reward", "prompt", "error"]
    assert table["video"].tolist() == [*order, "notes.mp4"]
    assert table["rank"].tolist() == [1, 2, 3]
    for _, row in table.iloc[:2].iterrows():
        assert [row[a] for a in ASPECTS] == pytest.approx(expected[row["video"]], abs=1e-6)
        assert row["reward"] == pytest.approx(rewards[row["video"]], abs=1e-6)
        assert row["error"] == ""
    assert table["prompt"].tolist() == [PROMPT] * 3
    assert table["error"][2].startswith("notes.mp4 is not a readable video file")
    assert [row[1] for row in ranking["data"]] == table["video"].tolist()  # the page shows the same order


@pytest.mark.parametrize(
    "uploads, match",
    [
        ([], r"No videos: upload two or more video files to compare\."),
        (["a"] * 17, r"17 videos: Compare takes at most 16 at a time\."),
        (["text", "empty"], r"No video could be scored: notes\.mp4 is not a readable video file.* empty\.mp4 is empty"),
    ],
    ids=["none", "too-many", "all-bad"],
)
def test_compare_without_a_scorable_video_gets_a_message(served, app_videos, uploads, match):
    _, _, client = served
    files = [handle_file(str(app_videos[k])) for k in uploads]
    message, ranking, csv_path = client.predict(files, PROMPT, *EQUAL, api_name="/compare")
    assert 'class="vs-message vs-error"' in message
    assert re.search(match, html.unescape(message)), message
    assert csv_path is None


def test_concurrent_requests_are_batched_into_one_reward_call(served, app_videos):
    counting, _, client = served
    counting.batch_sizes.clear()
    counting.entered.clear()
    counting.hold.clear()  # the first request occupies the model while the others queue up
    try:
        first = client.submit(handle_file(str(app_videos["a"])), PROMPT, *EQUAL, api_name="/score")
        assert counting.entered.wait(timeout=30)
        queued = [
            client.submit(handle_file(str(app_videos[k])), PROMPT, *EQUAL, api_name="/score") for k in ("a", "b", "a")
        ]
        deadline = time.monotonic() + 20
        while not all(job.status().code == Status.IN_QUEUE for job in queued) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        counting.hold.set()
    results = [job.result(timeout=60) for job in [first, *queued]]
    assert counting.batch_sizes == [1, 3]
    assert [table_numbers(r[1])[0] for r in results[1::2]] == [table_numbers(results[0][1])[0]] * 2


def test_no_file_outside_the_uploads_is_served(served, tiny_checkpoint_dir):
    _, url, _ = served
    for path in (tiny_checkpoint_dir / "config.json", "/etc/hostname"):
        with pytest.raises(urllib.error.HTTPError, match="HTTP Error 403") as error:
            urllib.request.urlopen(f"{url}gradio_api/file={path}")
        assert error.value.code == 403


def test_tiny_note_only_for_tiny_checkpoints(tiny_reward):
    def note_ids(reward):
        return [c.get("props", {}).get("elem_id") for c in build_app(reward).config["components"]].count("vs-tiny-note")

    assert note_ids(tiny_reward) == 1
    real_looking = CountingReward(tiny_reward)
    real_looking.is_tiny_random = False
    assert note_ids(real_looking) == 0


@pytest.fixture
def forged_client(served, monkeypatch):
    """gradio_client sending FileData as given, as a client on another machine naming a server path
    does (a local client would upload the file itself)."""
    import gradio_client.client

    monkeypatch.setattr(gradio_client.client.Endpoint, "_upload_file", lambda self, f, data_index: f)
    return served[2]


def _files_holding(folder, content: bytes) -> list:
    return [p for p in Path(folder).rglob("*") if p.is_file() and p.stat().st_size == len(content) and p.read_bytes() == content]


def test_a_request_naming_a_server_file_is_refused_and_nothing_is_copied(forged_client, app_videos, tmp_path):
    # issue 11 item 1: Gradio refuses paths outside its upload folder before anything is copied;
    # the app refuses files in that folder that this server did not receive.
    from gradio.utils import get_upload_folder

    secret = tmp_path / f"secret-{uuid.uuid4().hex}.mp4"
    shutil.copyfile(app_videos["a"], secret)
    passwd = Path("/etc/passwd").read_bytes()
    copies_before = len(_files_holding(get_upload_folder(), passwd))
    for path in ("/etc/passwd", str(secret)):  # the request loses its files, and gets the page's message
        file = {"path": path, "meta": {"_type": "gradio.FileData"}}
        message, table, _, gallery = forged_client.predict(file, PROMPT, *EQUAL, api_name="/score")
        assert "No video: upload a video file first." in message and table == "" and gallery == []
        message, _, csv_path = forged_client.predict([file], PROMPT, *EQUAL, api_name="/compare")
        assert "No videos: upload two or more video files" in message and csv_path is None
    assert not list(Path(get_upload_folder()).rglob(secret.name))
    assert len(_files_holding(get_upload_folder(), passwd)) == copies_before

    # Inside Gradio's shared upload folder but never uploaded here (another app's upload, an output).
    planted = Path(get_upload_folder()) / uuid.uuid4().hex / "planted.mp4"
    planted.parent.mkdir(parents=True)
    shutil.copyfile(app_videos["a"], planted)
    try:
        file = {"path": str(planted), "meta": {"_type": "gradio.FileData"}}
        message, table, _, gallery = forged_client.predict(file, PROMPT, *EQUAL, api_name="/score")
        assert "planted.mp4 was not uploaded to this app" in message and table == "" and gallery == []
        message, ranking, csv_path = forged_client.predict([file], PROMPT, *EQUAL, api_name="/compare")
        assert "planted.mp4 was not uploaded to this app" in message and csv_path is None
    finally:
        shutil.rmtree(planted.parent)


def test_a_request_naming_a_server_file_does_not_fail_its_batch_mates(served, app_videos, monkeypatch):
    import gradio_client.client

    counting, _, client = served
    counting.batch_sizes.clear()
    counting.entered.clear()
    counting.hold.clear()  # the first request occupies the model while the next two queue together
    try:
        first = client.submit(handle_file(str(app_videos["a"])), PROMPT, *EQUAL, api_name="/score")
        assert counting.entered.wait(timeout=30)
        honest = client.submit(handle_file(str(app_videos["a"])), PROMPT, *EQUAL, api_name="/score")
        deadline = time.monotonic() + 20
        while honest.status().code != Status.IN_QUEUE and time.monotonic() < deadline:  # uploaded, then queued
            time.sleep(0.05)
        monkeypatch.setattr(gradio_client.client.Endpoint, "_upload_file", lambda self, f, data_index: f)
        forged = client.submit({"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, PROMPT, *EQUAL,
                               api_name="/score")
        deadline = time.monotonic() + 20
        while not all(job.status().code == Status.IN_QUEUE for job in (honest, forged)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        counting.hold.set()
    assert "Scored gradient.mp4." in honest.result(timeout=60)[0]
    assert "No video: upload a video file first." in forged.result(timeout=60)[0]
    assert first.result(timeout=60)[1] == honest.result()[1]
    assert counting.batch_sizes == [1, 1]  # the honest and the forged request were one batch
