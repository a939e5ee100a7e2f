"""`videoscore-reward serve`: options reach the server settings; no public binding without a token."""

import pytest

from videoscore_reward import cli
from videoscore_reward.serve import deployment


def test_options_reach_the_server(monkeypatch):
    calls = []
    monkeypatch.setattr(deployment, "run_server", lambda settings, **kw: calls.append((settings, kw)))
    monkeypatch.setenv("VIDEOSCORE_REWARD_TOKEN", "s3cret")
    code = cli.main(["serve", "--model", "tiny-random", "--port", "8123", "--host", "0.0.0.0", "--num-replicas", "2",
                     "--gpus-per-replica", "1", "--weights", "visual quality=2", "--normalize", "unit", "--dtype",
                     "bfloat16", "--num-frames", "8", "--max-batch-size", "4", "--batch-wait-ms", "50",
                     "--max-request-mb", "1"])
    assert code == 0
    (settings, kw), = calls
    assert (settings.model, settings.dtype, settings.num_frames, settings.normalize) == ("tiny-random", "bfloat16", 8, "unit")
    assert settings.weights == {"visual quality": 2.0} and settings.token == "s3cret"
    assert (settings.max_batch_size, settings.batch_wait_s, settings.max_request_bytes) == (4, 0.05, 2**20)
    assert kw == dict(host="0.0.0.0", port=8123, num_replicas=2, gpus_per_replica=1.0, cpus_per_replica=1, address=None)
    assert "s3cret" not in repr(settings)


def test_public_binding_needs_a_token(monkeypatch, capsys):
    monkeypatch.delenv("VIDEOSCORE_REWARD_TOKEN", raising=False)
    monkeypatch.setattr(deployment, "run_server", lambda *a, **kw: pytest.fail("must not start"))
    assert cli.main(["serve", "--model", "tiny-random", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 makes the server reachable from other machines: set a bearer token" in capsys.readouterr().err
