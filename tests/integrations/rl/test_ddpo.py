import math

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from rl_helpers import MemoryTracker, brightness

from videoscore_reward import ASPECTS
from videoscore_reward.integrations.rl import (
    DDPOConfig,
    DDPOTrainer,
    ddim_step_with_logprob,
    ppo_clipped_loss,
    rwr_loss,
    rwr_weights,
    sample_with_logprobs,
)
from videoscore_reward.testing.pipelines import tiny_animatediff_pipeline

SIZE = dict(num_frames=2, height=16, width=16)
PROMPTS = ["a cat", "a dog"]


def config(**overrides):
    base = dict(**SIZE, sample_num_steps=4, sample_guidance_scale=3.0, sample_batch_size=2, sample_num_batches_per_epoch=2,
                train_batch_size=2, train_learning_rate=3e-2, lora_rank=4, lora_target="both", save_every=0,
                advantages="batch", seed=0)
    return DDPOConfig(**{**base, **overrides})


def test_ddim_step_matches_the_scheduler_and_a_gaussian():
    scheduler = DDIMScheduler(beta_schedule="linear", clip_sample=False, steps_offset=1)
    scheduler.set_timesteps(5)
    sample, output = torch.randn(2, 4, 2, 8, 8), torch.randn(2, 4, 2, 8, 8)
    t = scheduler.timesteps[1]
    prev, log_prob = ddim_step_with_logprob(scheduler, output, t, sample, eta=0.8, generator=torch.Generator().manual_seed(7))
    expected = scheduler.step(output, t, sample, eta=0.8, generator=torch.Generator().manual_seed(7)).prev_sample
    torch.testing.assert_close(prev, expected, atol=1e-5, rtol=0)
    mean = scheduler.step(output, t, sample, eta=0.8, variance_noise=torch.zeros_like(sample)).prev_sample
    std = 0.8 * scheduler._get_variance(t, t - 1000 // 5) ** 0.5
    reference = torch.distributions.Normal(mean, std).log_prob(prev).mean(dim=(1, 2, 3, 4))
    torch.testing.assert_close(log_prob, reference, atol=1e-4, rtol=0)
    _, again = ddim_step_with_logprob(scheduler, output, t, sample, eta=0.8, prev_sample=prev)
    torch.testing.assert_close(again, log_prob, atol=0, rtol=0)


def test_ddim_step_rejects_other_schedulers():
    with pytest.raises(TypeError, match="needs a DDIMScheduler, got EulerDiscreteScheduler"):
        ddim_step_with_logprob(EulerDiscreteScheduler(), torch.zeros(1, 4), 1, torch.zeros(1, 4), eta=1.0)


def test_sampling_reproduces_the_stock_pipeline():
    pipe = tiny_animatediff_pipeline()
    kw = dict(**SIZE, num_inference_steps=4, guidance_scale=3.0, eta=1.0)
    trajectories = sample_with_logprobs(pipe, PROMPTS, generator=torch.Generator().manual_seed(3), **kw)
    stock = pipe(PROMPTS, generator=torch.Generator().manual_seed(3), output_type="pt", **kw).frames
    torch.testing.assert_close(trajectories.videos, stock, atol=1e-5, rtol=0)
    assert trajectories.latents.shape == (2, 5, 4, 2, 8, 8) and trajectories.log_probs.shape == (2, 4)
    # The tiny scheduler has set_alpha_to_one=True: the last step is deterministic, log-probability 0.
    assert torch.all(trajectories.log_probs[:, -1] == 0) and torch.all(trajectories.log_probs[:, :-1] != 0)


def test_recomputed_log_probs_equal_the_recorded_ones():
    trainer = DDPOTrainer(config(), tiny_animatediff_pipeline(), brightness, PROMPTS)
    trajectories, _, _ = trainer.sample_epoch()
    trainer.unet.train()
    index = torch.tensor([2, 0, 3])
    for step in range(trainer.config.sample_num_steps - 1):
        ratio = torch.exp(trainer.log_probs(trajectories, index, step) - trajectories.log_probs[index, step])
        torch.testing.assert_close(ratio, torch.ones(3), atol=1e-5, rtol=0)


def test_clipped_loss_matches_a_hand_computation():
    log_probs = torch.tensor([0.0, math.log(1.5), math.log(0.5), math.log(1.05)])
    old = torch.zeros(4)
    advantages = torch.tensor([1.0, 2.0, -1.0, 9.0])
    loss, stats = ppo_clipped_loss(log_probs, old, advantages, clip_range=0.2, adv_clip_max=5.0)
    # ratios 1, 1.5, 0.5, 1.05; advantages clipped to 1, 2, -1, 5:
    # max(-1*1, -1*1) = -1; max(-2*1.5, -2*1.2) = -2.4; max(1*0.5, 1*0.8) = 0.8; max(-5*1.05, -5*1.05) = -5.25
    assert loss.item() == pytest.approx((-1 - 2.4 + 0.8 - 5.25) / 4, abs=1e-6)
    assert stats["clipfrac"].item() == pytest.approx(0.5)
    assert stats["approx_kl"].item() == pytest.approx(0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2 + math.log(1.05) ** 2) / 4)


def test_rwr_weights_and_loss():
    advantages = torch.tensor([0.0, math.log(3.0)])
    weights = rwr_weights(advantages, temperature=1.0)
    torch.testing.assert_close(weights, torch.tensor([0.5, 1.5]))  # 2 * softmax: 2 * [1/4, 3/4]
    assert rwr_loss(torch.tensor([-1.0, -2.0]), weights).item() == pytest.approx(-(0.5 * -1 + 1.5 * -2) / 2)
    with pytest.raises(ValueError, match="rwr_temperature must be > 0"):
        rwr_weights(advantages, 0.0)


@pytest.mark.parametrize("objective", ["ddpo", "rwr"])
def test_only_lora_parameters_change(objective):
    pipe = tiny_animatediff_pipeline()
    before = {name: p.detach().clone() for name, p in pipe.unet.state_dict().items()}
    frozen = {name: p.detach().clone() for part in ("vae", "text_encoder") for name, p in getattr(pipe, part).state_dict().items()}
    trainer = DDPOTrainer(config(objective=objective), pipe, brightness, PROMPTS)
    lora_before = {n: p.detach().clone() for n, p in pipe.unet.named_parameters() if p.requires_grad}
    trainer.train(1)
    assert trainer.global_step == 2  # 4 samples per epoch, 2 per optimizer step
    after = pipe.unet.state_dict()
    for name, value in before.items():
        key = name if name in after else name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after[key], value), name
    for part in ("vae", "text_encoder"):
        for name, value in getattr(pipe, part).state_dict().items():
            assert torch.equal(value, frozen[name]), name
    assert all("lora" in n for n in lora_before)
    changed = [n for n, p in pipe.unet.named_parameters() if p.requires_grad and not torch.equal(p, lora_before[n])]
    assert changed and all("lora_B" in n or "lora_A" in n for n in changed)


def test_saved_lora_reproduces_samples_in_a_fresh_pipeline(tmp_path):
    trainer = DDPOTrainer(config(), tiny_animatediff_pipeline(), brightness, PROMPTS)
    trainer.train(1)
    trainer.save_lora(tmp_path / "lora")
    kw = dict(**SIZE, num_inference_steps=4, guidance_scale=3.0, eta=1.0)
    trained = sample_with_logprobs(trainer.pipe, PROMPTS, generator=torch.Generator().manual_seed(5), **kw).videos

    fresh = tiny_animatediff_pipeline()
    base = fresh(PROMPTS, generator=torch.Generator().manual_seed(5), output_type="pt", **kw).frames
    assert (base - trained).abs().max() > 1e-3  # the LoRA changed the samples
    fresh.load_lora_weights(tmp_path / "lora")
    loaded = fresh(PROMPTS, generator=torch.Generator().manual_seed(5), output_type="pt", **kw).frames
    torch.testing.assert_close(loaded, trained, atol=1e-5, rtol=0)


class RecordingReward:
    """A VideoScore reward_fn that keeps what it returned."""

    def __init__(self, fn):
        self.fn, self.weights, self.outputs = fn, fn.weights, []

    def __call__(self, videos, prompts, metadata):
        rewards, info = self.fn(videos, prompts, metadata)
        self.outputs.append((rewards, info))
        return rewards, info


def test_per_aspect_curves_are_logged_and_checkpoints_saved(tiny_reward, tmp_path):
    tracker = MemoryTracker()
    reward_fn = RecordingReward(tiny_reward.as_reward_fn())
    trainer = DDPOTrainer(config(advantages="per_aspect", log_with=tracker, project_dir=str(tmp_path), save_every=1),
                          tiny_animatediff_pipeline(), reward_fn, PROMPTS)
    logs = trainer.step()
    assert tracker.config["advantages"] == "per_aspect"
    assert tracker.logs[-1] == (trainer.global_step, logs)
    scores = torch.cat([info["scores"] for _, info in reward_fn.outputs])
    rewards = torch.cat([r for r, _ in reward_fn.outputs])
    assert scores.shape == (4, 5)
    for i, aspect in enumerate(ASPECTS):
        assert logs[f"reward/{aspect}"] == pytest.approx(scores[:, i].mean().item(), abs=1e-6)
    assert logs["reward/mean"] == pytest.approx(rewards.mean().item(), abs=1e-6)
    assert (tmp_path / "checkpoint-1" / "pytorch_lora_weights.safetensors").is_file()


def test_config_and_trainer_errors():
    with pytest.raises(ValueError, match="objective must be one of"):
        config(objective="ppo")
    with pytest.raises(ValueError, match="sample_eta must be > 0"):
        config(sample_eta=0.0)
    with pytest.raises(ValueError, match=r"\(4\) must be a multiple of .* \(3\)"):
        config(train_batch_size=3)
    pipe = tiny_animatediff_pipeline()
    with pytest.raises(ValueError, match="advantages='per_aspect' needs a reward_fn with aspect weights"):
        DDPOTrainer(config(advantages="per_aspect"), pipe, brightness, PROMPTS)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(TypeError, match="samples with DDIM; pipe.scheduler is a EulerDiscreteScheduler"):
        DDPOTrainer(config(), pipe, brightness, PROMPTS)


def test_shared_initial_noise_gives_a_batch_one_prompt_and_one_x_T():
    trainer = DDPOTrainer(config(sample_shared_initial_noise=True, async_reward=False), tiny_animatediff_pipeline(),
                          brightness, PROMPTS)
    trajectories, rewards, _ = trainer.sample_epoch()
    for batch in (slice(0, 2), slice(2, 4)):
        assert len(set(trajectories.prompts[batch])) == 1
        start = trajectories.latents[batch, 0]
        assert torch.equal(start[0], start[1])
        assert not torch.equal(trajectories.latents[batch, 1][0], trajectories.latents[batch, 1][1])  # the steps differ
    assert not torch.equal(trajectories.latents[0, 0], trajectories.latents[2, 0])
    torch.testing.assert_close(rewards, trajectories.videos.mean(dim=(1, 2, 3, 4)))


def test_training_raises_a_known_reward():
    """DDPO with mean brightness as the reward: the brightness of a fixed set of seeded samples goes up.

    Groups of 32 videos share prompt and initial noise, so the advantages measure the policy's own steps
    (with independent x_T the tiny model's brightness is mostly decided by x_T and 30 steps do not suffice).
    """
    trainer = DDPOTrainer(config(sample_guidance_scale=1.0, sample_batch_size=32, sample_num_batches_per_epoch=1,
                                 train_batch_size=32, train_clip_range=0.1, sample_shared_initial_noise=True),
                          tiny_animatediff_pipeline(), brightness, PROMPTS)

    def evaluate():
        kw = dict(**SIZE, num_inference_steps=4, guidance_scale=1.0, eta=1.0)
        videos = sample_with_logprobs(trainer.pipe, ["a cat"] * 32, generator=torch.Generator().manual_seed(1234), **kw).videos
        return videos.mean(dim=(1, 2, 3, 4))

    before = evaluate()
    history = trainer.train(30)
    after = evaluate()
    assert trainer.global_step == 30
    # +0.02 to +0.03 over seeds 0-2; one per-video standard deviation of brightness is about 0.01.
    assert after.mean() > before.mean() + 0.01, (before.mean(), after.mean())
    assert len(history) == 30 and all(math.isfinite(h["train/loss"]) for h in history)


def test_resume_one_plus_one_equals_two_epochs_and_a_loaded_lora_is_refused(tmp_path):
    small = dict(sample_num_batches_per_epoch=1, advantages="per_prompt", tracker_min_count=2)
    straight = DDPOTrainer(config(num_epochs=2, **small, project_dir=str(tmp_path / "a")),
                           tiny_animatediff_pipeline(), brightness, PROMPTS)
    history = straight.train()
    first = DDPOTrainer(config(num_epochs=2, **small, save_every=1,
                               project_dir=str(tmp_path / "b")), tiny_animatediff_pipeline(), brightness, PROMPTS)
    first.train(1)
    resumed = DDPOTrainer(config(num_epochs=2, **small, project_dir=str(tmp_path / "b"),
                                 resume_from=str(tmp_path / "b" / "checkpoint-1")), tiny_animatediff_pipeline(), brightness, PROMPTS)
    assert resumed.stat_tracker.stats() == first.stat_tracker.stats()  # the per-prompt buffers came back
    rest = resumed.train()
    assert len(rest) == 1 and rest[0]["reward/mean"] == pytest.approx(history[1]["reward/mean"], abs=1e-7)
    trained = {n: p for n, p in straight.unet.named_parameters() if p.requires_grad}
    for name, value in resumed.unet.named_parameters():
        if value.requires_grad:
            torch.testing.assert_close(value, trained[name], atol=1e-6, rtol=0)
    # The old workaround (load the LoRA, build a new trainer) would silently restart from zero: refused.
    pipe = tiny_animatediff_pipeline()
    pipe.load_lora_weights(tmp_path / "b" / "checkpoint-1")
    with pytest.raises(ValueError, match="pipe.unet already carries a LoRA"):
        DDPOTrainer(config(), pipe, brightness, PROMPTS)
