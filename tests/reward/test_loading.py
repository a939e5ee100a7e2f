import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from videoscore_reward import CHECKPOINT_FRAMES, VideoScoreModel, VideoScoreReward
from videoscore_reward.reward.checkpoints import find_checkpoint
from videoscore_reward.testing import tiny_checkpoint


def test_checkpoint_is_in_the_original_layout(tiny_checkpoint_dir):
    config = json.loads((tiny_checkpoint_dir / "config.json").read_text())
    assert config["architectures"] == ["Idefics2ForSequenceClassification"]
    assert config["model_type"] == "idefics2"
    with safe_open(str(tiny_checkpoint_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"score.weight", "score.bias"} <= keys
    assert {k.split(".")[1] for k in keys - {"score.weight", "score.bias"}} == {"vision_model", "connector", "text_model"}
    assert all(k.startswith(("model.", "score.")) for k in keys)


def test_loads_key_for_key(tiny_checkpoint_dir):
    model, info = VideoScoreModel.from_pretrained(tiny_checkpoint_dir, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"]
    state = model.state_dict()
    with safe_open(str(tiny_checkpoint_dir / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == set(state)
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), state[key]), key
    assert model.score.out_features == 5 and model.score.bias is not None


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    def head(path):
        with safe_open(str(path / "model.safetensors"), "pt") as f:
            return f.get_tensor("score.weight")

    state_before = torch.random.get_rng_state()
    a = head(tiny_checkpoint(tmp_path / "a", seed=3))
    b = head(tiny_checkpoint(tmp_path / "b", seed=3))
    c = head(tiny_checkpoint(tmp_path / "c", seed=4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state_before), "tiny_checkpoint must not touch the global RNG"


def test_checkpoint_without_head_is_rejected(tiny_checkpoint_dir, tmp_path):
    target = tmp_path / "no-head"
    target.mkdir()
    for item in tiny_checkpoint_dir.iterdir():
        if item.name != "model.safetensors":
            (target / item.name).write_bytes(item.read_bytes())
    with safe_open(str(tiny_checkpoint_dir / "model.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("score.")}
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"not a VideoScore checkpoint.*score"):
        VideoScoreReward.from_pretrained(target, device="cpu")


def test_unreachable_hub_id_says_how_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="TIGER-Lab/VideoScore-v1.1") as info:
        VideoScoreReward.from_pretrained("TIGER-Lab/VideoScore-v1.1", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "TIGER-Lab/VideoScore-v1.1" in message and "local-dir" in message and "Hub" in message


def test_frame_count_per_checkpoint(tiny_checkpoint_dir, tmp_path):
    assert VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu").num_frames == 16
    assert VideoScoreReward.from_pretrained(tiny_checkpoint(tmp_path / "t48", num_frames=48), device="cpu").num_frames == 48
    assert VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", num_frames=8).num_frames == 8
    assert CHECKPOINT_FRAMES["TIGER-Lab/VideoScore-v1.1"] == 48
    assert find_checkpoint("TIGER-Lab/VideoScore-v1.1").num_frames == 48
    assert find_checkpoint("TIGER-Lab/VideoScore").num_frames == 16
    assert find_checkpoint("/data/models/VideoScore-v1.1").num_frames == 48
    assert find_checkpoint("/root/.cache/huggingface/hub/models--TIGER-Lab--VideoScore-v1.1/snapshots/abc").num_frames == 48
    assert find_checkpoint("/root/.cache/huggingface/hub/models--TIGER-Lab--VideoScore/snapshots/abc").num_frames == 16
    assert find_checkpoint("/data/my-model") is None


def test_defaults_cpu_float32_and_inference_only(tiny_reward):
    assert tiny_reward.device.type == "cpu"
    assert tiny_reward.dtype == torch.float32
    assert not tiny_reward.model.training
    assert not any(p.requires_grad for p in tiny_reward.model.parameters())
    assert tiny_reward.is_tiny_random
    assert "meaningless" in repr(tiny_reward)


def test_tiny_random_name_loads_offline():
    reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu")
    assert reward.is_tiny_random and reward.num_frames == 16
    out = reward(torch.rand(1, 4, 3, 32, 32), "a prompt")
    assert out.scores.shape == (1, 5)


@pytest.mark.parametrize("kwargs, match", [({"num_frames": 0}, "num_frames"), ({"batch_size": 0}, "batch_size")])
def test_bad_constructor_arguments(tiny_checkpoint_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        VideoScoreReward.from_pretrained(tiny_checkpoint_dir, device="cpu", **kwargs)
