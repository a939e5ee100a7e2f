import pytest
import torch

from videoscore_reward.integrations.diffusers import best_of_n, pipeline_frames, score_pipeline_output

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
