import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.callbacks import MultiPipelineCallbacks

from videoscore_reward.integrations.diffusers import RewardCallback, best_of_n, pipeline_frames, score_pipeline_output

KW = dict(num_frames=4, height=32, width=32, num_inference_steps=4)


def generate(pipe, prompt, seed, **kwargs):
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **{**KW, **kwargs})


def test_output_formats_give_the_same_scores(tiny_pipe, tiny_reward):
    prompts = ["a cat", "a dog"]
    pt = tiny_pipe(prompts, generator=torch.Generator().manual_seed(1), output_type="pt", **KW)
    np_out = tiny_pipe(prompts, generator=torch.Generator().manual_seed(1), output_type="np", **KW)
    pil = tiny_pipe(prompts, generator=torch.Generator().manual_seed(1), output_type="pil", **KW)
    assert pipeline_frames(pt.frames) is pt.frames  # tensors are used where they are
    reference = score_pipeline_output(tiny_reward, pt, prompts).scores
    torch.testing.assert_close(score_pipeline_output(tiny_reward, np_out, prompts).scores, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(score_pipeline_output(tiny_reward, pil.frames, prompts).scores, reference, atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="Expected pipeline frames"):
        pipeline_frames("frames")


class RecordingPipe:
    def __init__(self, pipe):
        self.pipe, self.batches = pipe, []

    @property
    def device(self):
        return self.pipe.device

    def __call__(self, prompt, **kwargs):
        self.batches.append(len(prompt))
        return self.pipe(prompt, **kwargs)


def test_best_of_n_returns_the_argmax_and_reproduces(tiny_pipe, tiny_reward):
    recorder = RecordingPipe(tiny_pipe)
    results = best_of_n(recorder, ["a cat", "a dog"], 3, tiny_reward, seeds=[11, 5, 7], chunk_size=4, **KW)
    assert max(recorder.batches) <= 4 and sum(recorder.batches) == 6
    for result in results:
        # Independent check: score each seed's video alone.
        alone = {s: tiny_reward(generate(tiny_pipe, result.prompt, s, output_type="pt").frames, result.prompt).rewards.item()
                 for s in (11, 5, 7)}
        assert result.seed == max(alone, key=lambda s: (alone[s], -s))
        assert [c.seed for c in result.candidates] == sorted(alone, key=lambda s: (-alone[s], s))
        assert result.reward == pytest.approx(alone[result.seed], abs=1e-4)
        again = generate(tiny_pipe, result.prompt, result.seed, output_type="pt").frames[0]
        torch.testing.assert_close(result.video, again, atol=1e-4, rtol=0)
        # The winner owns its memory: it does not keep its whole chunk of candidates alive.
        assert result.video.untyped_storage().nbytes() == result.video.numel() * result.video.element_size()


def test_best_of_n_ties_go_to_the_lower_seed(tiny_pipe, tiny_reward, monkeypatch):
    from videoscore_reward import RewardOutput

    def constant(videos, prompts):
        return RewardOutput(scores=torch.full((len(videos), 5), 2.0), rewards=torch.full((len(videos),), 2.0))

    results = best_of_n(tiny_pipe, "a cat", 3, constant, seeds=[9, 4, 6], chunk_size=1, **KW)
    assert results[0].seed == 4 and [c.seed for c in results[0].candidates] == [4, 6, 9]


def test_best_of_n_single_and_bad_arguments(tiny_pipe, tiny_reward):
    (result,) = best_of_n(tiny_pipe, "a cat", 1, tiny_reward, **KW)
    assert result.seed == 0 and len(result.candidates) == 1
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n(tiny_pipe, "a cat", 0, tiny_reward)
    with pytest.raises(ValueError, match="distinct"):
        best_of_n(tiny_pipe, "a cat", 2, tiny_reward, seeds=[1, 1])
    with pytest.raises(ValueError, match="chunk_size"):
        best_of_n(tiny_pipe, "a cat", 2, tiny_reward, chunk_size=0)
    with pytest.raises(ValueError, match="num_videos_per_prompt=2"):
        best_of_n(tiny_pipe, "a cat", 2, tiny_reward, num_videos_per_prompt=2)


def test_callback_fires_at_the_chosen_steps(tiny_pipe, tiny_reward):
    callback = RewardCallback(tiny_reward, "a cat", every=2)
    out = generate(tiny_pipe, "a cat", 0, output_type="pt", callback_on_step_end=MultiPipelineCallbacks([callback]),
                   callback_on_step_end_tensor_inputs=callback.tensor_inputs)
    timesteps = tiny_pipe.scheduler.timesteps.tolist()
    assert [h.step_index for h in callback.history] == [1, 3]
    assert [h.timestep for h in callback.history] == [timesteps[1], timesteps[3]]
    # At the last step the latents are the final clean video: same reward as the pipeline output.
    torch.testing.assert_close(callback.history[-1].output.scores, tiny_reward(out.frames, "a cat").scores, atol=1e-4, rtol=0)


@pytest.mark.parametrize("guidance_scale", [1.0, 7.5])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_callback_clean_estimate_matches_ddim_prediction(tiny_pipe, tiny_reward, monkeypatch, prediction_type, guidance_scale):
    # The x0 estimate at step i must equal DDIM's pred_original_sample for the next step's input,
    # whatever the model predicts, with or without classifier-free guidance.
    tiny_pipe.scheduler = DDIMScheduler.from_config(tiny_pipe.scheduler.config, prediction_type=prediction_type)
    captured = []
    step = tiny_pipe.scheduler.step
    tiny_pipe.scheduler.step = lambda *a, **k: captured.append(step(*a, **k)) or captured[-1]
    estimates = []
    original = RewardCallback._clean_estimate
    monkeypatch.setattr(RewardCallback, "_clean_estimate", staticmethod(lambda *a: estimates.append(original(*a)) or estimates[-1]))
    callback = RewardCallback(tiny_reward, "a cat", every=1)
    generate(tiny_pipe, "a cat", 0, guidance_scale=guidance_scale, output_type="latent", callback_on_step_end=callback,
             callback_on_step_end_tensor_inputs=callback.tensor_inputs)
    assert len(estimates) == 3
    for i, estimate in enumerate(estimates):
        torch.testing.assert_close(estimate, captured[i + 1].pred_original_sample, atol=1e-4, rtol=1e-4)


def test_callback_unet_call_gets_the_pipelines_cross_attention_kwargs(tiny_pipe, tiny_reward):
    seen = []
    unet_forward = tiny_pipe.unet.forward
    tiny_pipe.unet.forward = lambda *a, **k: seen.append(k.get("cross_attention_kwargs")) or unet_forward(*a, **k)
    callback = RewardCallback(tiny_reward, "a cat", every=1)
    generate(tiny_pipe, "a cat", 0, num_inference_steps=2, output_type="latent", cross_attention_kwargs={"scale": 1.0},
             callback_on_step_end=callback, callback_on_step_end_tensor_inputs=callback.tensor_inputs)
    assert seen == [{"scale": 1.0}] * 3, "two denoising steps and one estimate, all with the LoRA scale"


def test_callback_threshold_stops_early(tiny_pipe, tiny_reward):
    calls = []
    unet_forward = tiny_pipe.unet.forward
    tiny_pipe.unet.forward = lambda *a, **k: calls.append(1) or unet_forward(*a, **k)
    callback = RewardCallback(tiny_reward, "a cat", every=1, threshold=100.0)
    generate(tiny_pipe, "a cat", 0, num_inference_steps=6, output_type="latent", callback_on_step_end=callback,
             callback_on_step_end_tensor_inputs=callback.tensor_inputs)
    assert [h.step_index for h in callback.history] == [0]
    assert len(calls) == 2, "one denoising step and one estimate, then the pipeline stops"
    with pytest.raises(ValueError, match="every must be >= 1"):
        RewardCallback(tiny_reward, "a cat", every=0)
