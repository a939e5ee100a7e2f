"""The shared x0 / CFG maths against diffusers' schedulers' own computations."""

import pytest
import torch
from diffusers import (
    CogVideoXDDIMScheduler,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

from videoscore_reward.integrations._diffusion import cfg_combine, predict_x0, scheduler_x0


def run_steps(scheduler, steps=5):
    """Step a scheduler on random model outputs; per step: (our x0, the scheduler's x0, x_t, x_t-1)."""
    generator = torch.Generator().manual_seed(0)
    scheduler.set_timesteps(steps)
    sample = torch.randn(2, 4, 3, 4, 4, generator=generator) * getattr(scheduler, "init_noise_sigma", 1.0)
    records = []
    for t in scheduler.timesteps:
        output = torch.randn(sample.shape, generator=generator)
        before = sample
        result = scheduler.step(output, t, sample)
        index = scheduler.step_index - 1 if getattr(scheduler, "step_index", None) is not None else None
        ours = scheduler_x0(scheduler, output, t, before, index)
        # Multistep solvers keep their data prediction (x0) as model_outputs[-1].
        theirs = getattr(result, "pred_original_sample", None)
        if theirs is None and hasattr(scheduler, "model_outputs"):
            theirs = scheduler.model_outputs[-1]
        records.append((ours, theirs, before, result.prev_sample, t))
        sample = result.prev_sample
    return records


@pytest.mark.parametrize("scheduler", [
    DDIMScheduler(prediction_type="epsilon"), DDIMScheduler(prediction_type="v_prediction"),
    DDIMScheduler(prediction_type="sample"),
    CogVideoXDDIMScheduler(prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing"),
    EulerDiscreteScheduler(prediction_type="epsilon"), EulerDiscreteScheduler(prediction_type="v_prediction"),
    DPMSolverMultistepScheduler(prediction_type="epsilon"), DPMSolverMultistepScheduler(prediction_type="v_prediction"),
    UniPCMultistepScheduler(prediction_type="epsilon"),
    UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
    DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
], ids=lambda s: f"{type(s).__name__}-{s.config.prediction_type}")
def test_x0_equals_the_schedulers_own(scheduler):
    for ours, theirs, *_ in run_steps(scheduler):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_flow_match_x0_follows_the_euler_relation():
    # FlowMatchEuler keeps no x0: x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v, so v comes from two
    # consecutive latents and x0 = x_i - sigma_i * v.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    for i, (ours, _, before, after, _) in enumerate(run_steps(scheduler)):
        sigma, sigma_next = scheduler.sigmas[i], scheduler.sigmas[i + 1]
        velocity = (after - before) / (sigma_next - sigma)
        torch.testing.assert_close(ours, before - sigma * velocity, atol=1e-4, rtol=1e-4)


def test_predict_x0_inverts_the_forward_process():
    x0, eps = torch.randn(3, 8), torch.randn(3, 8)
    alpha, sigma = torch.tensor(0.6), torch.tensor(0.8)
    x_t = alpha * x0 + sigma * eps
    torch.testing.assert_close(predict_x0(eps, x_t, alpha, sigma, "epsilon"), x0)
    torch.testing.assert_close(predict_x0(alpha * eps - sigma * x0, x_t, alpha, sigma, "v_prediction"), x0)
    torch.testing.assert_close(predict_x0(x0, x_t, alpha, sigma, "sample"), x0)
    s = torch.tensor(0.3)
    torch.testing.assert_close(predict_x0(eps - x0, (1 - s) * x0 + s * eps, 1 - s, s, "flow_prediction"), x0)
    with pytest.raises(ValueError, match="Unknown prediction_type 'x'"):
        predict_x0(eps, x_t, alpha, sigma, "x")


def test_unsupported_scheduler_is_named():
    from diffusers import PNDMScheduler

    with pytest.raises(ValueError, match="Scheduler PNDMScheduler is not supported"):
        scheduler_x0(PNDMScheduler(), torch.zeros(1), 999, torch.zeros(1), 0)


def test_cfg_combine_matches_diffusers():
    from diffusers.pipelines.animatediff.pipeline_animatediff_sdxl import rescale_noise_cfg

    cond, uncond = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 4, 3, 5, 5)
    guided = uncond + 5.0 * (cond - uncond)
    torch.testing.assert_close(cfg_combine(cond, uncond, 5.0), guided)
    torch.testing.assert_close(cfg_combine(cond, uncond, 5.0, 0.7), rescale_noise_cfg(guided, cond, 0.7))
