import pytest

from videoscore_reward import sample_indices


@pytest.mark.parametrize("frames", [16, 48])
def test_indices_follow_the_formula(frames):
    for total in range(1, 700):
        indices = sample_indices(total, frames)
        if total <= frames:
            assert indices == list(range(total))
        else:
            assert indices == [int((k * total) // frames) for k in range(frames)]
            assert len(set(indices)) == frames and indices == sorted(indices) and indices[-1] < total


def test_known_values_and_none():
    assert sample_indices(32, 16) == list(range(0, 32, 2))
    assert sample_indices(100, 16)[:4] == [0, 6, 12, 18]  # floor(k * 6.25)
    assert sample_indices(5, None) == [0, 1, 2, 3, 4]
    assert sample_indices(0, 16) == []


@pytest.mark.parametrize("total, frames, message", [(-1, 16, r"total_frames must be >= 0, got -1"), (10, 0, r"num_frames must be >= 1 or None, got 0")])
def test_bad_arguments(total, frames, message):
    with pytest.raises(ValueError, match=message):
        sample_indices(total, frames)
