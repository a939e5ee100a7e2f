"""RewardCallback on every tiny diffusers video pipeline and on every supported scheduler.

Each run is checked against what the pipeline does without the callback (denoiser calls counted by
forward hooks, the returned video) and the x0 it scores against an independent computation from the
latents the pipeline produced (the DDIM or Euler relation between consecutive latents, or the
multistep solver's own stored x0).
"""

from pathlib import Path

import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from pipeline_helpers import brightness_reward, call_kwargs, generate

from videoscore_reward.integrations.diffusers import RewardCallback, callback as callback_module
from videoscore_reward.testing.pipelines import TINY_CALL_KWARGS, tiny_pipeline

FAMILIES = sorted(TINY_CALL_KWARGS)
STEPS = 3


class Recorder(PipelineCallback):
    """Keeps the latents after every step, and a multistep solver's stored x0 (model_outputs[-1])."""

    tensor_inputs = ["latents"]

    def __init__(self):
        super().__init__()
        self.latents, self.solver_x0 = [], []

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        self.latents.append(callback_kwargs["latents"].clone())
        outputs = getattr(pipeline.scheduler, "model_outputs", None)
        self.solver_x0.append(outputs[-1].clone() if outputs else None)
        return callback_kwargs


def count_denoiser_calls(pipe):
    calls = []
    denoisers = [getattr(pipe, name, None) for name in ("unet", "transformer", "transformer_2")]
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in denoisers if m is not None]
    return calls, handles


def run(pipe, name, callback=None, **kwargs):
    calls, handles = count_denoiser_calls(pipe)
    try:
        out = generate(pipe, name, output_type="pt", callback_on_step_end=callback, **kwargs).frames
    finally:
        for handle in handles:
            handle.remove()
    return out, len(calls)


def independent_x0(scheduler, i, x_i, x_next, solver_x0):
    """x0 of step i from the latents before (x_i) and after (x_next) it, without our maths."""
    name = type(scheduler).__name__
    if solver_x0 is not None:
        return solver_x0
    if name in ("DDIMScheduler", "CogVideoXDDIMScheduler"):
        # Deterministic DDIM: x_next = sqrt(a_prev) x0 + sqrt(1 - a_prev) (x_i - sqrt(a) x0) / sqrt(1 - a).
        t = int(scheduler.timesteps[i])
        a = scheduler.alphas_cumprod[t]
        prev = t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        a_prev = scheduler.alphas_cumprod[prev] if prev >= 0 else scheduler.final_alpha_cumprod
        c = ((1 - a_prev) / (1 - a)).sqrt()
        return (x_next - c * x_i) / (a_prev.sqrt() - c * a.sqrt())
    sigma, sigma_next = scheduler.sigmas[i], scheduler.sigmas[i + 1]
    if name == "FlowMatchEulerDiscreteScheduler":  # x_next = x_i + (s_next - s) v, x0 = x_i - s v
        return x_i - sigma * (x_next - x_i) / (sigma_next - sigma)
    if name == "EulerDiscreteScheduler":  # x_next = x_i + (s_next - s) (x_i - x0) / s
        return x_i - sigma * (x_next - x_i) / (sigma_next - sigma)
    raise AssertionError(f"no independent x0 for {name}")


def check_scored_x0(pipe, name, reward, monkeypatch, **callback_options):
    """Run with the callback (and a Recorder); return (callback, recorder, {step: decoded x0})."""
    decoded = {}
    decode = callback_module.decode_video

    def recording_decode(pipeline, latents, **kwargs):
        decoded[len(decoded)] = latents.clone()
        return decode(pipeline, latents, **kwargs)

    monkeypatch.setattr(callback_module, "decode_video", recording_decode)
    callback = RewardCallback(pipe, reward, "a cat", **callback_options)
    recorder = Recorder()
    try:
        out, calls = run(pipe, name, MultiPipelineCallbacks([callback, recorder]))
    finally:
        callback.remove()
    scored = {entry.step_index: decoded[k] for k, entry in enumerate(callback.history)}
    for i, x0 in scored.items():
        if 0 < i < STEPS - 1:
            expected = independent_x0(pipe.scheduler, i, recorder.latents[i - 1], recorder.latents[i], recorder.solver_x0[i])
            torch.testing.assert_close(x0, expected.to(x0.dtype), atol=2e-4, rtol=2e-4)
    return callback, out, calls


@pytest.mark.parametrize("name", FAMILIES)
def test_callback_on_every_pipeline(name, shared_pipeline, monkeypatch):
    pipe = shared_pipeline(name)
    reference, reference_calls = run(pipe, name)
    callback, out, calls = check_scored_x0(pipe, name, brightness_reward, monkeypatch)
    assert calls == reference_calls, "no extra denoiser call"
    assert torch.equal(out, reference), "the callback leaves the returned video unchanged"
    timesteps = pipe.scheduler.timesteps.tolist()
    assert [(h.step_index, h.timestep, h.final) for h in callback.history] == [
        (i, float(t), i == STEPS - 1) for i, t in enumerate(timesteps)
    ]
    torch.testing.assert_close(callback.video, out, atol=0, rtol=0)  # the last entry scored the returned video
    torch.testing.assert_close(callback.history[-1].output.rewards, brightness_reward(out, None).rewards, atol=0, rtol=0)
    if name == "wan22":
        assert {float(t) >= pipe.config.boundary_ratio * 1000 for t in timesteps} == {True, False}, "both experts ran"


SCHEDULER_CASES = [  # beyond each pipeline's own scheduler, which test_callback_on_every_pipeline runs
    ("animatediff", EulerDiscreteScheduler, {}),
    ("animatediff", DPMSolverMultistepScheduler, {}),
    ("animatediff", UniPCMultistepScheduler, {}),
    ("wan", DPMSolverMultistepScheduler, dict(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)),
]
README_LABELS = {
    "animatediff": "AnimateDiffPipeline (SD1.5)", "animatediff_sdxl": "AnimateDiffSDXLPipeline",
    "wan": "WanPipeline (Wan 2.1)", "wan22": "WanPipeline (Wan 2.2, two experts)",
    "wan_i2v": "WanImageToVideoPipeline (Wan 2.1)", "cogvideox": "CogVideoXPipeline (1.0)", "ltx": "LTXPipeline",
    "hunyuan_video": "HunyuanVideoPipeline",
}


@pytest.mark.parametrize("name, scheduler, config", SCHEDULER_CASES, ids=lambda c: getattr(c, "__name__", c))
def test_callback_on_every_scheduler(name, scheduler, config, shared_pipeline, monkeypatch):
    pipe = shared_pipeline(name)
    monkeypatch.setattr(pipe, "scheduler", scheduler.from_config(pipe.scheduler.config, **config))
    reference, reference_calls = run(pipe, name)
    # Scores step 1 only: every=2 picks steps 1 and 2, the cutoff drops step 2.
    callback, out, calls = check_scored_x0(pipe, name, brightness_reward, monkeypatch, every=2, cutoff_step_index=1)
    assert [h.step_index for h in callback.history] == [1]
    assert calls == reference_calls and torch.equal(out, reference)


def test_readme_support_table_is_what_is_tested(shared_pipeline):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("<!-- support-table -->")[1].split("<!-- /support-table -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        label, ships, others = (cell.strip() for cell in line.strip("|").split("|"))
        rows[label] = (ships.split()[0], sorted(o.split()[0] for o in others.split(", ") if o))
    tested = {}
    for name in FAMILIES:
        pipe = shared_pipeline(name)
        assert README_LABELS[name].split()[0] == type(pipe).__name__
        others = sorted(s.__name__ for family, s, _ in SCHEDULER_CASES if family == name)
        tested[README_LABELS[name]] = (type(pipe.scheduler).__name__, others)
    assert rows == tested


def test_videoscore_reward_in_multi_callbacks_with_videos_per_prompt(shared_pipeline, tiny_reward):
    pipe = shared_pipeline("wan")
    callback = RewardCallback(pipe, tiny_reward, ["a cat", "a dog"], every=2)
    try:
        out = pipe(prompt=["a cat", "a dog"], num_videos_per_prompt=2, generator=torch.Generator().manual_seed(0),
                   output_type="pt", callback_on_step_end=MultiPipelineCallbacks([callback, Recorder()]),
                   **call_kwargs("wan")).frames
    finally:
        callback.remove()
    assert [h.step_index for h in callback.history] == [1, 2]
    final = tiny_reward(out, ["a cat", "a cat", "a dog", "a dog"])  # the pipeline's order of videos
    torch.testing.assert_close(callback.history[-1].output.scores, final.scores, atol=1e-6, rtol=0)


def test_cutoff_ratio_history_reset_and_errors(shared_pipeline, tiny_reward):
    pipe = shared_pipeline("animatediff")
    callback = RewardCallback(pipe, brightness_reward, "a cat", cutoff_step_ratio=0.5)  # int(4 * 0.5) = step 2
    try:
        run(pipe, "animatediff", callback, steps=4)
        assert [h.step_index for h in callback.history] == [0, 1, 2]
        run(pipe, "animatediff", callback, steps=2)
        assert [h.step_index for h in callback.history] == [0, 1], "history describes the last call only"
    finally:
        callback.remove()
    assert "step" not in vars(pipe.scheduler), "remove() gives the scheduler its own step back"
    with pytest.raises(ValueError, match="Either cutoff_step_ratio or cutoff_step_index"):
        RewardCallback(pipe, tiny_reward, "a cat", cutoff_step_ratio=0.5, cutoff_step_index=1)
    with pytest.raises(ValueError, match="every must be >= 1"):
        RewardCallback(pipe, tiny_reward, "a cat", every=0)


def test_callback_refuses_what_it_cannot_follow(tiny_reward):
    from diffusers import PNDMScheduler

    pipe = tiny_pipeline("animatediff")
    callback = RewardCallback(pipe, brightness_reward, "a cat")
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(ValueError, match="scheduler changed after its RewardCallback was made"):
        run(pipe, "animatediff", callback)
    pipe.scheduler = PNDMScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(ValueError, match="does not support PNDMScheduler"):
        RewardCallback(pipe, tiny_reward, "a cat")
    with pytest.raises(ValueError, match="Cannot tell how str decodes"):
        RewardCallback("not a pipeline", tiny_reward, "a cat")


def test_early_stop_is_visible_and_keeps_the_clean_estimate(shared_pipeline):
    pipe = shared_pipeline("wan")
    reference, reference_calls = run(pipe, "wan", steps=4)
    callback = RewardCallback(pipe, brightness_reward, ["a cat"], threshold=2.0)  # brightness is always < 2
    try:
        out, calls = run(pipe, "wan", callback, steps=4)
    finally:
        callback.remove()
    assert callback.stopped_early and callback.stopped_at_step == 0
    assert [h.step_index for h in callback.history] == [0]
    assert calls == reference_calls // 4, "one denoising step (two CFG passes), then the pipeline stops"
    assert callback.video.shape == out.shape and not torch.equal(callback.video, out)
    torch.testing.assert_close(callback.history[0].output.rewards, brightness_reward(callback.video, None).rewards)
