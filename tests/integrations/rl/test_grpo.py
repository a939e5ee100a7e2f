import importlib.util
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler, WanPipeline
from rl_helpers import MemoryTracker, brightness, linear_decoder

from videoscore_reward.integrations.rl import (
    GRPOConfig,
    GRPOTrainer,
    flow_sde_step_with_logprob,
    gaussian_kl,
    group_advantages,
)
from videoscore_reward.integrations.rl.grpo import TRANSFORMER_2_WEIGHT_NAME
from videoscore_reward.integrations.rl.wan import sample_wan_with_logprobs
from videoscore_reward.testing.pipelines import tiny_wan22_pipeline, tiny_wan_pipeline

SIZE = dict(num_frames=5, height=16, width=16, max_sequence_length=16)
PROMPTS = ["a cat", "a dog"]


def config(**overrides):
    base = dict(**SIZE, sample_num_steps=4, sample_guidance_scale=3.0, sample_batch_size=4, sample_num_batches_per_epoch=1,
                group_size=4, train_batch_size=2, train_gradient_accumulation_steps=1, train_learning_rate=3e-2,
                train_clip_range=0.2, lora_rank=4, lora_alpha=4, save_every=0, async_reward=False, seed=0)
    return GRPOConfig(**{**base, **overrides})


def lora_weights(trainer):
    return {f"{name}.{key}": p.detach().clone() for name, model in trainer.models.items()
            for key, p in model.named_parameters() if p.requires_grad}


# -- the SDE step ------------------------------------------------------------------------------------------


def test_sde_step_log_prob_equals_an_independent_gaussian_density():
    torch.manual_seed(0)
    x, v = torch.randn(3, 4, 2, 3, 3), torch.randn(3, 4, 2, 3, 3)
    sigma, sigma_next, a = 0.8, 0.55, 0.7
    step = flow_sde_step_with_logprob(v, x, sigma, sigma_next, noise_level=a, sigma_max=0.95,
                                      generator=torch.Generator().manual_seed(1))
    # Reverse SDE dx = [v - g^2/2 * score] dsigma with score = -(x + (1 - sigma) v) / sigma, Euler-Maruyama.
    g = a * math.sqrt(sigma / (1 - sigma))
    score = -(x + (1 - sigma) * v) / sigma
    dt = sigma_next - sigma
    mean = x + (v - g**2 / 2 * score) * dt
    std = g * math.sqrt(-dt)
    expected = torch.distributions.Normal(mean, std).log_prob(step.prev_sample).mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(step.log_prob, expected, atol=1e-5, rtol=0)
    assert step.std == pytest.approx(std)
    # Recomputing with the drawn sample gives the same density; at sigma = 1 the coefficient uses sigma_max.
    again = flow_sde_step_with_logprob(v, x, sigma, sigma_next, noise_level=a, sigma_max=0.95, prev_sample=step.prev_sample)
    torch.testing.assert_close(again.log_prob, step.log_prob, atol=0, rtol=0)
    top = flow_sde_step_with_logprob(v, x, 1.0, 0.9, noise_level=a, sigma_max=0.95)
    assert top.std == pytest.approx(a * math.sqrt(1 / 0.05) * math.sqrt(0.1))
    ode = flow_sde_step_with_logprob(v, x, sigma, sigma_next, noise_level=0.0, sigma_max=0.95)
    torch.testing.assert_close(ode.prev_sample, x + v * dt)
    assert torch.equal(ode.log_prob, torch.zeros(3)) and ode.std == 0
    with pytest.raises(ValueError, match="from a higher noise level to a lower one"):
        flow_sde_step_with_logprob(v, x, 0.5, 0.6, noise_level=a, sigma_max=0.95)


def test_gaussian_kl_is_closed_form():
    mean, ref = torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    torch.testing.assert_close(gaussian_kl(mean, ref, 2.0), torch.tensor([0.0, (1 + 4 + 4) / (2 * 4) / 3]))


@pytest.mark.parametrize("build", [tiny_wan_pipeline, tiny_wan22_pipeline], ids=["wan2.1", "wan2.2"])
def test_ode_sampling_reproduces_the_stock_pipeline(build):
    """No SDE step: the videos equal WanPipeline's (two CFG passes, Wan 2.2's expert switch and guidance_scale_2)."""
    pipe = build()
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    extra = {"guidance_scale_2": 2.0} if pipe.transformer_2 is not None else {}
    kw = dict(**SIZE, num_inference_steps=4, guidance_scale=3.0, **extra)
    trajectories = sample_wan_with_logprobs(pipe, PROMPTS, sde_steps=[], generator=torch.Generator().manual_seed(3), **kw)
    stock = pipe(PROMPTS, generator=torch.Generator().manual_seed(3), output_type="pt", **kw).frames
    torch.testing.assert_close(trajectories.videos, stock, atol=1e-5, rtol=0)
    assert trajectories.latents.shape == (2, 5, 16, 2, 2, 2)
    assert not trajectories.trainable.any() and torch.equal(trajectories.log_probs, torch.zeros(2, 4))


# -- the trainer -------------------------------------------------------------------------------------------


def test_ode_steps_are_not_trained():
    trainer = GRPOTrainer(config(sde_window_size=1, sde_window_start=1, sde_window_end=3), tiny_wan_pipeline(),
                          brightness, PROMPTS)
    trajectories, _, _ = trainer.sample_epoch()
    window = trajectories.trainable[0].nonzero().flatten().tolist()
    assert len(window) == 1 and window[0] in (1, 2) and torch.all(trajectories.trainable == trajectories.trainable[0])
    assert torch.all(trajectories.log_probs[:, window[0]] != 0)
    assert torch.all(trajectories.log_probs[:, [j for j in range(4) if j != window[0]]] == 0)
    trained = []
    loss = trainer._unit_loss
    trainer._unit_loss = lambda t, index, step, a: trained.append(step) or loss(t, index, step, a)
    trainer.train_on(trajectories, torch.ones(4))
    assert set(trained) == set(window)


def test_first_inner_step_ratio_is_one_on_both_experts():
    trainer = GRPOTrainer(config(), tiny_wan22_pipeline(), brightness, PROMPTS)
    assert set(trainer.models) == {"transformer", "transformer_2"}
    trajectories, _, _ = trainer.sample_epoch()
    for model in trainer.models.values():
        model.train()
    index = torch.tensor([3, 0, 2])
    for step in range(4):
        ratio = torch.exp(trainer.step_log_prob(trajectories, index, step).log_prob - trajectories.log_probs[index, step])
        torch.testing.assert_close(ratio, torch.ones(3), atol=1e-5, rtol=0)


def test_only_lora_changes_and_the_kl_starts_at_zero():
    pipe = tiny_wan22_pipeline()
    frozen = {f"{part}.{k}": v.clone() for part in ("transformer", "transformer_2", "vae", "text_encoder")
              for k, v in getattr(pipe, part).state_dict().items()}
    tracker = MemoryTracker()
    trainer = GRPOTrainer(config(kl_beta=0.1, log_with=tracker), pipe, brightness, PROMPTS)
    before = lora_weights(trainer)
    trainer.train(1)
    steps = [logs for _, logs in tracker.logs if "train/lr" in logs]  # one log per optimizer step
    assert len(steps) == 2 and trainer.global_step == 2  # 4 samples, 2 per optimizer step
    assert steps[0]["train/kl"] == 0 and steps[1]["train/kl"] > 0
    for part in ("transformer", "transformer_2", "vae", "text_encoder"):
        state = getattr(pipe, part).state_dict()
        for key, value in state.items():
            if "lora" not in key:
                name = f"{part}.{key.replace('.base_layer', '')}"
                assert torch.equal(value, frozen[name]), name
    changed = {n for n, p in lora_weights(trainer).items() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert {n.split(".")[0] for n in changed} == {"transformer", "transformer_2"}


def test_saved_lora_loads_into_a_fresh_pipeline_and_reproduces_samples(tmp_path):
    trainer = GRPOTrainer(config(), tiny_wan22_pipeline(), brightness, PROMPTS)
    trainer.train(1)
    trainer.save_lora(tmp_path / "lora")
    kw = dict(**SIZE, num_inference_steps=4, guidance_scale=3.0)
    trained = trainer.pipe(PROMPTS, generator=torch.Generator().manual_seed(5), output_type="pt", **kw).frames

    fresh = tiny_wan22_pipeline()
    base = fresh(PROMPTS, generator=torch.Generator().manual_seed(5), output_type="pt", **kw).frames
    assert (base - trained).abs().max() > 1e-4  # the LoRA changed the samples
    fresh.load_lora_weights(tmp_path / "lora")
    fresh.load_lora_weights(tmp_path / "lora", weight_name=TRANSFORMER_2_WEIGHT_NAME, load_into_transformer_2=True)
    loaded = fresh(PROMPTS, generator=torch.Generator().manual_seed(5), output_type="pt", **kw).frames
    torch.testing.assert_close(loaded, trained, atol=1e-5, rtol=0)


def test_training_raises_a_known_reward():
    """GRPO with mean brightness as the reward (through a decoder where brightness depends on the latents, see
    `linear_decoder`): the deterministic samples of 32 fixed seeds get brighter, seed by seed.

    12 epochs of one group of 8: the per-seed gain is +0.067 (standard error 0.004, all 32 seeds up) with
    training seed 0 and +0.110 (0.006) with seed 1; with learning rate 0 the gain is exactly 0.
    """
    trainer = GRPOTrainer(config(sample_guidance_scale=1.0, sample_batch_size=8, group_size=8, train_batch_size=8),
                          linear_decoder(tiny_wan_pipeline()), brightness, PROMPTS)

    def evaluate():
        kw = dict(**SIZE, num_inference_steps=4, guidance_scale=1.0)
        videos = sample_wan_with_logprobs(trainer.pipe, ["a cat"] * 32, sde_steps=[],
                                          generator=torch.Generator().manual_seed(99), **kw).videos
        return videos.mean(dim=(1, 2, 3, 4))

    before = evaluate()
    history = trainer.train(12)
    gain = evaluate() - before
    assert gain.mean() > 0.03 and gain.mean() > 5 * gain.std() / math.sqrt(32), (gain.mean(), gain.std())
    assert (gain > 0).float().mean() > 0.9
    assert all(math.isfinite(h["train/loss"]) for h in history)


def test_two_processes_give_the_single_process_group_advantages(tmp_path):
    """`accelerate launch --num_processes 2` on the CPU: groups of 4 span the two processes (2 videos each);
    each process's advantages equal the single-process computation on all rewards."""
    script = Path(__file__).with_name("two_process_grpo.py")
    # A port known to be free, rather than port 0 left to the launcher; one OpenMP thread per process on 2 cores.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    launched = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                               "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
                               str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(r["processes"] == 2 for r in ranks)
    assert torch.equal(ranks[0]["group_ids"], ranks[1]["group_ids"]) and ranks[0]["prompts"] == ranks[1]["prompts"]
    rewards = torch.cat([r["rewards"] for r in ranks])
    groups = torch.cat([r["group_ids"] for r in ranks])
    expected = torch.as_tensor(group_advantages(rewards, groups, eps=1e-4), dtype=torch.float32)
    torch.testing.assert_close(torch.cat([r["advantages"] for r in ranks]), expected)
    assert not torch.equal(ranks[0]["rewards"], ranks[1]["rewards"])  # each process sampled its own videos


def test_resume_two_plus_two_equals_four_epochs(tmp_path):
    straight = GRPOTrainer(config(num_epochs=4, project_dir=str(tmp_path / "a")), tiny_wan_pipeline(), brightness, PROMPTS)
    history = straight.train()
    first = GRPOTrainer(config(num_epochs=4, save_every=2, project_dir=str(tmp_path / "b")), tiny_wan_pipeline(),
                        brightness, PROMPTS)
    first.train(2)
    assert (tmp_path / "b" / "checkpoint-2" / "pytorch_lora_weights.safetensors").is_file()
    resumed = GRPOTrainer(config(num_epochs=4, project_dir=str(tmp_path / "b"), resume_from="latest"),
                          tiny_wan_pipeline(), brightness, PROMPTS)
    assert (resumed.epoch, resumed.global_step) == (2, 4)
    rest = resumed.train()
    assert len(rest) == 2 and resumed.global_step == straight.global_step == 8
    for name, value in lora_weights(straight).items():
        torch.testing.assert_close(lora_weights(resumed)[name], value, atol=1e-6, rtol=0)
    for a, b in zip(history[2:], rest):
        assert a["reward/mean"] == pytest.approx(b["reward/mean"], abs=1e-7)


def test_a_pipe_with_a_lora_is_refused_or_continued(tmp_path):
    trainer = GRPOTrainer(config(), tiny_wan_pipeline(), brightness, PROMPTS)
    trainer.train(1)
    trainer.save_lora(tmp_path / "lora")
    pipe = tiny_wan_pipeline()
    pipe.load_lora_weights(tmp_path / "lora")
    with pytest.raises(ValueError, match=r"pipe.transformer already carries a LoRA .*existing_lora='continue'"):
        GRPOTrainer(config(), pipe, brightness, PROMPTS)
    loaded = {k: v.clone() for k, v in pipe.transformer.state_dict().items() if "lora" in k}
    continued = GRPOTrainer(config(existing_lora="continue"), pipe, brightness, PROMPTS)
    assert list(pipe.transformer.peft_config) == ["default_0"]  # no fresh adapter next to the loaded one
    continued.train(1)
    after = {k: v for k, v in pipe.transformer.state_dict().items() if "lora" in k}
    assert after.keys() == loaded.keys() and any(not torch.equal(after[k], loaded[k]) for k in loaded)


def test_held_out_eval_writes_a_grid_and_the_drift_guard_stops(tmp_path):
    calls = []

    def falling(videos, prompts, metadata):
        calls.append(len(prompts))
        b = videos.mean(dim=(1, 2, 3, 4))
        # "style" is not optimised (weight 0) and falls by 0.1 per call.
        return b, {"brightness": b, "style": torch.full_like(b, 1.0 - 0.1 * len(calls))}

    trainer = GRPOTrainer(config(eval_every=1, drift_margin=0.15, drift_aspects="style", project_dir=str(tmp_path),
                                 log_with="tensorboard", num_epochs=5), tiny_wan_pipeline(), falling, PROMPTS,
                          eval_prompts=["a red ball", "a tree", "a boat"])
    history = trainer.train()
    # eval (style 0.9) -> train (0.8) -> eval (0.7) -> train (0.6) -> eval (0.5: a drop of 0.4 > 0.15) -> stop
    assert len(history) == 2 and "style" in trainer.stopped
    assert history[0]["eval/style"] == pytest.approx(0.9) and history[1]["eval/style"] == pytest.approx(0.7)
    assert "eval/brightness" in history[0] and "reward_std/brightness" in history[0]
    with av.open(str(tmp_path / "eval" / "epoch-0.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (32, 32, 3)  # 3 videos of 16x16 in a 2x2 grid
    assert list((tmp_path / "grpo-wan").glob("events.out.tfevents.*"))


def test_config_and_trainer_errors():
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        config(group_size=1)
    with pytest.raises(ValueError, match="sde_window_size \\(5\\) does not fit"):
        config(sde_window_size=5)
    with pytest.raises(ValueError, match="advantages must be one of"):
        config(advantages="batch")
    with pytest.raises(ValueError, match="multiple of group_size \\(8\\)"):
        GRPOTrainer(config(group_size=8), tiny_wan_pipeline(), brightness, PROMPTS)
    with pytest.raises(ValueError, match="num_frames - 1 must be a multiple of 4"):
        GRPOTrainer(config(num_frames=6), tiny_wan_pipeline(), brightness, PROMPTS)
    pipe = tiny_wan_pipeline()
    pipe.scheduler = DDIMScheduler()
    with pytest.raises(TypeError, match="needs a flow-matching scheduler"):
        GRPOTrainer(config(), pipe, brightness, PROMPTS)
    with pytest.raises(TypeError, match="trains a WanPipeline"):
        GRPOTrainer(config(), object(), brightness, PROMPTS)
    with pytest.raises(ValueError, match="eval_every needs held-out prompts"):
        GRPOTrainer(config(eval_every=1), tiny_wan_pipeline(), brightness, PROMPTS)
    with pytest.raises(ValueError, match="drift_margin needs held-out evals"):
        config(drift_margin=0.1)
    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(ImportError, match="train_use_8bit_adam=True needs bitsandbytes"):
            GRPOTrainer(config(train_use_8bit_adam=True), tiny_wan_pipeline(), brightness, PROMPTS)


def test_config_imports_without_diffusers_or_peft():
    code = ("import sys; from videoscore_reward.integrations.rl import GRPOConfig, DDPOConfig; GRPOConfig(); DDPOConfig(); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('diffusers', 'peft')]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
