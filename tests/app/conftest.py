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


@pytest.fixture(scope="session")
def huge_video(tmp_path_factory):
    """16 blank 8192x8192 frames (~200 kB of H.264): 3 GiB once decoded, over the default budget.
    Matroska keeps no frame count, so the check also covers videos whose frames must be counted."""
    import av
    import numpy as np

    path = tmp_path_factory.mktemp("huge") / "huge.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 8192
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.zeros((8192 * 3 // 2, 8192), np.uint8), format="yuv420p")
        for _ in range(16):
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
