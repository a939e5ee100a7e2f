import pytest


@pytest.fixture(scope="session")
def app_videos(tmp_path_factory):
    """Two small different test videos and three bad uploads (text, empty, ~100 kB of noise)."""
    from videoscore_reward.testing import make_frames, write_test_video

    folder = tmp_path_factory.mktemp("app-videos")
    bad_text = folder / "notes.mp4"
    bad_text.write_text("hello, this is not a video\n")
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    big = folder / "big.mp4"
    big.write_bytes(bytes(range(256)) * 400)
    return {
        "a": write_test_video(folder / "gradient.mp4", 20, 64, 48),
        "b": write_test_video(folder / "other.webm", 12, 48, 48, codec="libvpx-vp9", frames=make_frames(12, 48, 48, seed=3)),
        "text": bad_text,
        "empty": empty,
        "big": big,
    }
