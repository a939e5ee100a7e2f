"""The reward server on a local Ray Serve deployment, through HTTP and `RemoteReward`."""

import http.client
import json
import pickle
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from videoscore_reward import ASPECTS, RemoteReward, RemoteRewardError, VideoScoreReward
from videoscore_reward.integrations.adapters import DanceGRPOReward, FlowFactoryReward, FlowGRPOReward
from videoscore_reward.serve.protocol import encode_request
from videoscore_reward.testing import write_test_video

TOKEN = "test-token-0123"  # the server fixture's (conftest.py)
PROMPTS = ["a red fox in the snow", "a sailing boat at dusk", "a city street at night", "a cat playing piano"]


def _video(i: int) -> torch.Tensor:
    """Video i: lengths above and below 16 frames, several sizes; even ones uint8, odd ones float in [0, 1]."""
    generator = torch.Generator().manual_seed(i)
    frames, height, width = 10 + 3 * i, 24 + 4 * (i % 3), 32 + 8 * (i % 2)
    video = torch.rand(frames, 3, height, width, generator=generator)
    return (video * 255).round().to(torch.uint8) if i % 2 == 0 else video


def _post(url: str, body: bytes, token: str | None = TOKEN, path: str = "/score"):
    headers = {"Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _get(url: str, path: str, token: str | None = None):
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def remote(server, token):
    assert token == TOKEN
    return RemoteReward(server, token=TOKEN)


def test_info_describes_the_model(server, remote, tiny_reward):
    status, info = _get(server, "/info", TOKEN)
    assert status == 200
    assert info["aspects"] == list(ASPECTS) and info["score_range"] == [1.0, 4.0]
    assert info["num_frames"] == tiny_reward.num_frames == 16 and info["tiny_random"] is True
    assert remote.aspects == ASPECTS and remote.num_frames == 16 and remote.max_batch_size == 8


def test_16_concurrent_requests_equal_local_scores_and_are_batched(server, remote, tiny_reward):
    before = _get(server, "/health")[1]["batch_sizes"]
    videos = [_video(i) for i in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outputs = list(pool.map(lambda i: remote([videos[i]], PROMPTS[i % 4]), range(16)))
    for i, output in enumerate(outputs):
        expected = tiny_reward([videos[i]], PROMPTS[i % 4])
        torch.testing.assert_close(output.scores, expected.scores, atol=1e-5, rtol=0)
        torch.testing.assert_close(output.rewards, expected.rewards, atol=1e-5, rtol=0)
    after = _get(server, "/health")[1]["batch_sizes"]
    formed = {int(size): count - before.get(size, 0) for size, count in after.items() if count > before.get(size, 0)}
    assert sum(size * count for size, count in formed.items()) == 16  # every video scored once
    assert max(formed) > 1, f"the server formed only batches of one: {formed}"


def test_a_batch_larger_than_the_server_limit_is_split(remote, tiny_reward):
    videos = [_video(i % 4) for i in range(11)]  # 8 + 3 at max_batch_size 8
    prompts = [PROMPTS[i % 4] for i in range(11)]
    output = remote(videos, prompts)
    torch.testing.assert_close(output.scores, tiny_reward(videos, prompts).scores, atol=1e-5, rtol=0)
    # value_range and layout travel as for a local call
    batch = torch.rand(2, 5, 3, 24, 24, generator=torch.Generator().manual_seed(5)) * 2 - 1
    output = remote(batch.transpose(1, 2), PROMPTS[:2], value_range=(-1, 1), layout="BCTHW")
    torch.testing.assert_close(output.rewards, tiny_reward(batch, PROMPTS[:2], value_range=(-1, 1)).rewards,
                               atol=1e-5, rtol=0)


def test_bad_payloads_get_a_4xx_and_the_next_request_is_answered(server, remote, tiny_reward):
    status, answer = _post(server, b"\x00\x01 not a safetensors file at all")
    assert status == 400 and "not a safetensors file" in answer["error"]
    status, answer = _post(server, encode_request([torch.zeros(4, 4, 8, 8, dtype=torch.uint8)], ["x"]))
    assert status == 400 and "has 4 channels" in answer["error"]
    status, answer = _post(server, encode_request([torch.zeros(2, 3, 8, 8)], ["x", "y"]))
    assert status == 400 and "one per prompt, 2 prompts" in answer["error"]
    status, answer = _post(server, encode_request([torch.full((2, 3, 8, 8), 7.0)], ["x"]))
    assert status == 400 and "outside the declared value_range" in answer["error"]
    status, answer = _post(server, encode_request([torch.zeros(2, 3, 8, 8, dtype=torch.int32)], ["x"]))
    assert status == 400 and "dtype torch.int32" in answer["error"]
    status, answer = _post(server, b"\x00" * (4 * 2**20 + 1))
    assert status == 413 and "exceeds the server's limit of 4194304 bytes" in answer["error"]
    status, answer = _post(server, encode_request([_video(0)] * 9, ["x"] * 9))
    assert status == 413 and "at most 8" in answer["error"]
    output = remote([_video(1)], ["x"])
    torch.testing.assert_close(output.scores, tiny_reward([_video(1)], ["x"]).scores, atol=1e-5, rtol=0)


def test_the_token_is_required(server):
    body = encode_request([_video(0)], ["x"])
    assert _post(server, body, token=None)[0] == 401
    status, answer = _post(server, body, token="wrong")
    assert status == 401 and "bearer token" in answer["error"]
    assert _get(server, "/info")[0] == 401
    assert _get(server, "/health")[0] == 200  # for load balancers; it tells nothing about the model
    with pytest.raises(RemoteRewardError, match=r"127\.0\.0\.1:\d+/info answered HTTP 401: missing or wrong bearer"):
        RemoteReward(server, token="wrong")


def test_a_client_that_disconnects_does_not_break_the_others_batch(server, remote, tiny_reward):
    address = urlparse(server)
    body = encode_request([_video(2)] * 4, ["x"] * 4)

    def disconnect():
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        connection.request("POST", "/score", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
        connection.sock.shutdown(socket.SHUT_RDWR)  # gone before the answer
        connection.close()

    videos = [_video(i) for i in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        gone = [pool.submit(disconnect) for _ in range(3)]
        answered = [pool.submit(remote, [videos[i]], PROMPTS[i]) for i in range(4)]
        for future in gone:
            future.result()
        outputs = [future.result() for future in answered]
    for i, output in enumerate(outputs):
        torch.testing.assert_close(output.scores, tiny_reward([videos[i]], PROMPTS[i]).scores, atol=1e-5, rtol=0)
    assert remote([videos[0]], "after").scores.shape == (1, 5)


def test_every_adapter_works_with_the_remote_reward(remote, tiny_reward, tmp_path):
    videos = torch.rand(2, 12, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    remote_rewards, _ = FlowGRPOReward(remote)(videos, PROMPTS[:2], [{}, {}], only_strict=True)
    local_rewards, _ = FlowGRPOReward(tiny_reward)(videos, PROMPTS[:2], [{}, {}], only_strict=True)
    assert set(remote_rewards) == set(local_rewards) == {*ASPECTS, "avg"}
    for key in local_rewards:
        np.testing.assert_allclose(remote_rewards[key], local_rewards[key], atol=1e-5, rtol=0)
    path = write_test_video(tmp_path / "sample.mp4", num_frames=30)
    remote_row = DanceGRPOReward(remote).reward([str(path)], ["a red fox"], use_norm=True)[0]
    local_row = DanceGRPOReward(tiny_reward).reward([str(path)], ["a red fox"], use_norm=True)[0]
    assert remote_row == pytest.approx(local_row, abs=1e-5)
    torch.testing.assert_close(FlowFactoryReward(remote)(prompt=PROMPTS[:2], video=list(videos)).rewards,
                               FlowFactoryReward(tiny_reward)(prompt=PROMPTS[:2], video=list(videos)).rewards,
                               atol=1e-5, rtol=0)


def test_submit_as_reward_fn_weights_and_pickling(server, remote, tiny_checkpoint_dir):
    videos = torch.rand(3, 6, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    weights = {"text-to-video alignment": 2.0, "visual quality": 1.0}
    local = VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", weights=weights, normalize="unit")
    weighted = RemoteReward(server, token=TOKEN, weights=weights, normalize="unit")
    expected = local(videos, PROMPTS[:3])
    torch.testing.assert_close(weighted.submit(videos, PROMPTS[:3]).result().rewards, expected.rewards,
                               atol=1e-5, rtol=0)
    rewards, info = pickle.loads(pickle.dumps(weighted.as_reward_fn()))(videos, PROMPTS[:3], [{}] * 3)
    torch.testing.assert_close(rewards, expected.rewards, atol=1e-5, rtol=0)
    torch.testing.assert_close(info["scores"], expected.scores, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="Unknown aspect"):
        RemoteReward(server, token=TOKEN, weights={"motion": 1.0})


def test_drops_into_the_ddpo_trainer(remote):
    from videoscore_reward.integrations.rl import DDPOConfig, DDPOTrainer
    from videoscore_reward.testing.pipelines import tiny_animatediff_pipeline

    config = DDPOConfig(num_frames=2, height=16, width=16, sample_num_steps=2, sample_batch_size=2,
                        sample_num_batches_per_epoch=1, train_batch_size=2, lora_rank=2, save_every=0,
                        advantages="batch", seed=0)
    trainer = DDPOTrainer(config, tiny_animatediff_pipeline(), remote.as_reward_fn(), ["a cat", "a dog"])
    logs = trainer.step()
    assert set(f"reward/{aspect}" for aspect in ASPECTS) <= set(logs)
    assert 1.0 < logs["reward/mean"] < 4.5


def test_the_readme_serving_snippet_runs_against_the_server(server, monkeypatch, tiny_reward):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## Serving the reward\n"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    code = code[: code.index("```")]
    assert 'RemoteReward("http://127.0.0.1:8000")' in code
    monkeypatch.setenv("VIDEOSCORE_REWARD_TOKEN", TOKEN)
    videos, prompts = torch.rand(2, 6, 3, 24, 24, generator=torch.Generator().manual_seed(6)), PROMPTS[:2]
    namespace = {"videos": videos, "prompts": prompts}
    exec(code.replace("http://127.0.0.1:8000", server), namespace)
    torch.testing.assert_close(namespace["out"].scores, tiny_reward(videos, prompts).scores, atol=1e-5, rtol=0)
    rewards, info = namespace["reward_fn"](videos, prompts, None)
    torch.testing.assert_close(rewards, namespace["out"].rewards, atol=0, rtol=0)
