import pytest

from videoscore_reward.cli import main
from videoscore_reward.testing import write_test_video


@pytest.fixture
def scored(tmp_path, tiny_checkpoint_dir):
    """A folder of two good videos (mp4, webm in a subfolder) and a broken one, scored by the CLI."""
    root = tmp_path / "gen"
    write_test_video(root / "a_cat_seed_1.mp4", 8, 32, 32)
    write_test_video(root / "sub" / "a_dog_seed_2.webm", 8, 32, 32, codec="libvpx-vp9")
    (root / "bad.mp4").write_text("x")
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    return root, root / "evaluation_results.csv"


@pytest.fixture(scope="session")
def vs2_checkpoint(tmp_path_factory):
    """The tiny random VideoScore2 checkpoint that "tiny-random-videoscore2" writes."""
    from videoscore_reward.testing.videoscore2 import tiny_videoscore2_checkpoint

    return tiny_videoscore2_checkpoint(tmp_path_factory.mktemp("tiny-videoscore2"))
