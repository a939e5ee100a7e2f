from concurrent.futures import Future

import pytest
import torch
from pipeline_helpers import brightness_reward, call_kwargs, generate

from videoscore_reward import RewardOutput
from videoscore_reward.integrations.diffusers import best_of_n, pipeline_frames, score_pipeline_output

KW = call_kwargs("wan", steps=2)


def generate_tiny(pipe, prompt, seed=0, **kwargs):
    return pipe(prompt=prompt, generator=torch.Generator().manual_seed(seed), **KW, **kwargs)


def test_output_formats_give_the_same_scores(shared_pipeline, tiny_reward):
    pipe, prompts = shared_pipeline("wan"), ["a cat", "a dog"]
    pt, np_out, pil = (generate_tiny(pipe, prompts, output_type=kind) for kind in ("pt", "np", "pil"))
    assert pipeline_frames(pt.frames) is pt.frames  # tensors are used where they are
    reference = score_pipeline_output(tiny_reward, pt, prompts).scores
    torch.testing.assert_close(score_pipeline_output(tiny_reward, np_out, prompts).scores, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(score_pipeline_output(tiny_reward, pil.frames, prompts).scores, reference, atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="Expected pipeline frames"):
        pipeline_frames("frames")


class CallLog:
    """A pipeline stand-in that records each call's keyword arguments (and the order of events)."""

    def __init__(self, pipe, events=None):
        self.pipe, self.calls, self.events = pipe, [], events if events is not None else []

    @property
    def device(self):
        return self.pipe.device

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        self.events.append(f"generate {len(self.calls) - 1}")
        return self.pipe(**kwargs)


def test_best_of_n_returns_the_argmax_and_reproduces(shared_pipeline, tiny_reward):
    pipe = CallLog(shared_pipeline("wan"))
    results = best_of_n(pipe, ["a cat", "a dog"], 3, tiny_reward, seeds=[11, 5, 7], chunk_size=4, **KW)
    assert [len(call["prompt"]) for call in pipe.calls] == [4, 2]
    for result in results:
        # Independent check: generate and score each seed's video alone.
        alone = {s: generate_tiny(pipe.pipe, result.prompt, s, output_type="pt").frames for s in (11, 5, 7)}
        rewards = {s: tiny_reward(video, result.prompt).rewards.item() for s, video in alone.items()}
        assert result.seed == max(rewards, key=lambda s: (rewards[s], -s))
        assert [c.seed for c in result.candidates] == sorted(rewards, key=lambda s: (-rewards[s], s))
        assert result.reward == pytest.approx(rewards[result.seed], abs=1e-4)
        torch.testing.assert_close(result.video, alone[result.seed][0], atol=1e-5, rtol=0)
        # The winner owns its memory: it does not keep its whole chunk of candidates alive.
        assert result.video.untyped_storage().nbytes() == result.video.numel() * result.video.element_size()


def test_best_of_n_ties_go_to_the_lower_seed(shared_pipeline):
    def constant(videos, prompts):
        return RewardOutput(scores=torch.full((len(videos), 5), 2.0), rewards=torch.full((len(videos),), 2.0))

    results = best_of_n(shared_pipeline("wan"), "a cat", 3, constant, seeds=[9, 4, 6], chunk_size=1, **KW)
    assert results[0].seed == 4 and [c.seed for c in results[0].candidates] == [4, 6, 9]


def test_best_of_n_single_and_bad_arguments(shared_pipeline, tiny_reward):
    pipe = shared_pipeline("wan")
    (result,) = best_of_n(pipe, "a cat", 1, brightness_reward, **KW)
    assert result.seed == 0 and len(result.candidates) == 1
    with pytest.raises(ValueError, match="n must be >= 1"):
        best_of_n(pipe, "a cat", 0, tiny_reward)
    with pytest.raises(ValueError, match="distinct"):
        best_of_n(pipe, "a cat", 2, tiny_reward, seeds=[1, 1])
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        best_of_n(pipe, "a cat", 2, tiny_reward, chunk_size=0)
    with pytest.raises(ValueError, match="num_videos_per_prompt=2"):
        best_of_n(pipe, "a cat", 2, tiny_reward, num_videos_per_prompt=2)
    with pytest.raises(ValueError, match="keep must be 'best' or 'all'"):
        best_of_n(pipe, "a cat", 1, tiny_reward, keep="worst")


def test_score_pipeline_output_latents_tuple_and_videos_per_prompt(shared_pipeline, tiny_reward):
    pipe = shared_pipeline("wan")
    out = generate_tiny(pipe, ["a cat", "a dog"], num_videos_per_prompt=2, output_type="pt", return_dict=False)
    assert isinstance(out, tuple)
    expected = tiny_reward(out[0], ["a cat", "a cat", "a dog", "a dog"])
    torch.testing.assert_close(score_pipeline_output(tiny_reward, out, ["a cat", "a dog"]).scores, expected.scores)
    latents = generate_tiny(pipe, "a cat", output_type="latent")
    with pytest.raises(ValueError, match=r"\(1, 16, 2, 2, 2\).*output_type='latent'.*output_type='pt'"):
        score_pipeline_output(tiny_reward, latents, "a cat")
    with pytest.raises(ValueError, match="Got 3 prompts for 4 videos"):
        score_pipeline_output(tiny_reward, out, ["a", "b", "c"])


def test_best_of_n_pairs_negative_prompts_with_each_candidate(shared_pipeline):
    pipe = CallLog(shared_pipeline("wan"))
    prompts, negatives = ["a cat", "a dog"], ["blurry cat", "blurry dog"]
    results = best_of_n(pipe, prompts, 2, brightness_reward, seeds=[3, 8], chunk_size=3, negative_prompt=negatives,
                        **call_kwargs("wan"))
    for call in pipe.calls:  # chunks mix prompts; each video still gets its own prompt's negative prompt
        assert call["negative_prompt"] == [negatives[prompts.index(p)] for p in call["prompt"]]
    assert [len(call["prompt"]) for call in pipe.calls] == [3, 1]
    for p, result in enumerate(results):
        for candidate in result.candidates:
            alone = generate(pipe.pipe, "wan", prompt=result.prompt, seed=candidate.seed, output_type="pt",
                             negative_prompt=negatives[p]).frames
            assert candidate.reward == pytest.approx(brightness_reward(alone, None).rewards.item(), abs=1e-5)


def test_best_of_n_pairs_images_with_each_candidate(shared_pipeline):
    from PIL import Image

    pipe = CallLog(shared_pipeline("wan_i2v"))
    images = [Image.new("RGB", (16, 16), (250, 250, 250)), Image.new("RGB", (16, 16), (5, 5, 5))]
    results = best_of_n(pipe, ["a cat", "a dog"], 2, brightness_reward, chunk_size=4,
                        **call_kwargs("wan_i2v", image=images))
    # One image per pipeline call: a chunk never mixes prompts when images differ per prompt.
    assert [(call["prompt"], call["image"]) for call in pipe.calls] == [(["a cat"] * 2, images[0]), (["a dog"] * 2, images[1])]
    for result, image in zip(results, images):
        alone = generate(pipe.pipe, "wan_i2v", prompt=result.prompt, seed=result.seed, output_type="pt", image=image).frames
        torch.testing.assert_close(result.video, alone[0], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="image has 2 entries for 3 prompts"):
        best_of_n(pipe, ["a", "b", "c"], 1, brightness_reward, image=images)
    with pytest.raises(ValueError, match="latents= would make every candidate start from the same noise"):
        best_of_n(pipe, "a cat", 2, brightness_reward, latents=torch.zeros(1))


class LoggedFuture(Future):
    def __init__(self, events, index):
        super().__init__()
        self.events, self.index = events, index

    def result(self, timeout=None):
        self.events.append(f"result {self.index}")
        return super().result(timeout)


class SubmitLog:
    """A reward whose `submit` records when each chunk is submitted and when its result is taken."""

    def __init__(self, events):
        self.events, self.submitted = events, 0

    def submit(self, frames, prompts):
        future = LoggedFuture(self.events, self.submitted)
        self.events.append(f"submit {self.submitted}")
        self.submitted += 1
        future.set_result(brightness_reward(frames, prompts))
        return future


def test_best_of_n_scores_a_chunk_while_the_next_one_is_generated(shared_pipeline):
    events = []
    pipe = CallLog(shared_pipeline("wan"), events)
    best_of_n(pipe, "a cat", 3, SubmitLog(events), chunk_size=1, **call_kwargs("wan", steps=1))
    assert events == ["generate 0", "submit 0", "generate 1", "submit 1", "result 0", "generate 2", "submit 2",
                      "result 1", "result 2"]


def test_best_of_n_keeps_all_and_writes_a_dataset_organize_reads(shared_pipeline, tiny_reward, tmp_path):
    import pandas as pd

    from videoscore_reward.folder import organize, read_table

    prompts = ["a cat", "a dog"]
    results = best_of_n(shared_pipeline("wan"), prompts, 2, tiny_reward, keep="all", output_dir=tmp_path / "cands",
                        **call_kwargs("wan", steps=2))
    table = read_table(tmp_path / "cands" / "scores.csv")
    assert len(table) == 4 and set(table["prompt"]) == set(prompts)
    for result in results:
        winner = next(c for c in result.candidates if c.seed == result.seed)
        assert torch.equal(winner.video, result.video)
        for candidate in result.candidates:
            row = table[table["video_name"] == candidate.path.name].iloc[0]
            assert row["prompt"] == result.prompt and row["reward"] == pytest.approx(candidate.reward, abs=1e-6)
            assert candidate.path.parent == tmp_path / "cands" and candidate.video.shape == result.video.shape
    report = organize(tmp_path / "cands", tmp_path / "cands" / "scores.csv", tmp_path / "dataset")
    rows = pd.read_csv(tmp_path / "dataset" / "metadata.csv")
    assert len(rows) == 4 and sorted(rows["reward"].round(5)) == sorted(round(c.reward, 5) for r in results for c in r.candidates)
    assert len(report.copied) == 4 and not report.skipped and not report.missing
