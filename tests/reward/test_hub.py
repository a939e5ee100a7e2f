"""Without a network a hub id fails at once with one line, or loads from the local cache: no retries."""

import shutil
import socket

import httpx
import pytest
from huggingface_hub import constants

from videoscore_reward import VideoScoreReward
from videoscore_reward.reward import hub


@pytest.fixture
def hub_away(monkeypatch, tmp_path):
    """The Hub's endpoint is a closed local port, the cache an empty folder, and any HTTP request fails the test."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for name in hub._PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))

    def no_http(*args, **kwargs):
        raise AssertionError("no HTTP request expected once the probe found the Hub unreachable")

    monkeypatch.setattr(httpx.Client, "send", no_http)
    real_getaddrinfo, lookups = socket.getaddrinfo, []

    def local_only(host, *args, **kwargs):  # every HTTP client looks its host up first; clients retry on errors
        if host not in ("127.0.0.1", "localhost"):
            lookups.append(host)
            raise OSError(f"no network in this test ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    hub.hub_reachable.cache_clear()
    yield tmp_path / "hub-cache"
    hub.hub_reachable.cache_clear()
    assert lookups == [], f"network lookups after the probe found the Hub unreachable: {lookups}"


@pytest.mark.parametrize("name", ["TIGER-Lab/VideoScore-v1.1", "TIGER-Lab/VideoScore2", "someone/some-model"])
def test_uncached_hub_id_fails_in_one_line_naming_the_offline_model(hub_away, name):
    with pytest.raises(OSError, match="cannot be reached") as info:
        VideoScoreReward.from_pretrained(name, device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "cannot be reached" in message and f"hf download {name} --local-dir DIR" in message
    assert '"tiny-random"' in message and "--model tiny-random" in message


def test_cached_hub_id_loads_without_the_hub(hub_away, tiny_checkpoint_dir):
    repo = hub_away / "models--TIGER-Lab--VideoScore-v1.1"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abc")
    shutil.copytree(tiny_checkpoint_dir, repo / "snapshots" / "0123abc")
    reward = VideoScoreReward.from_pretrained("TIGER-Lab/VideoScore-v1.1", device="cpu")
    assert reward.is_tiny_random


def test_offline_variable_set_after_import_is_honoured(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_reachable.cache_clear()
    try:
        assert hub.hub_reachable() is False
        with pytest.raises(OSError, match="HF_HUB_OFFLINE=1 is set"):
            hub.locate_checkpoint("TIGER-Lab/VideoScore")
    finally:
        hub.hub_reachable.cache_clear()
