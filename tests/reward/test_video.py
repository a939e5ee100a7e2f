import re
import warnings

import av
import numpy as np
import pytest
import torch

from videoscore_reward import VideoLoadError, load_video, sample_indices
from videoscore_reward.testing import make_frames, write_audio_only, write_test_video, write_truncated_video


def ffmpeg(*args):
    import shutil
    import subprocess

    binary = shutil.which("ffmpeg")
    assert binary, "ffmpeg makes the test files (`python -m videoscore_reward.testing.system_tools` installs it)"
    subprocess.run([binary, "-v", "error", "-y", *map(str, args)], check=True)


def decode_all(path):
    """Every frame with plain PyAV, as the independent reference."""
    with av.open(str(path)) as container:
        return torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in container.decode(video=0)])


@pytest.mark.parametrize("total, num_frames", [(50, 16), (10, 16), (49, 48), (30, None)])
def test_sampled_frames_are_the_formula_frames(tmp_path, total, num_frames):
    path = write_test_video(tmp_path / "v.mp4", total, 64, 48)
    frames = load_video(path, num_frames)
    everything = decode_all(path)
    assert everything.shape[0] == total
    expected = everything[sample_indices(total, num_frames)]
    assert frames.dtype == torch.uint8 and frames.shape == expected.shape
    assert torch.equal(frames, expected)


@pytest.mark.parametrize(
    "name, codec, pix_fmt",
    [
        ("h264.mp4", "libx264", "yuv420p"),
        ("h264-444.mkv", "libx264", "yuv444p"),
        ("h264-10bit.mp4", "libx264", "yuv420p10le"),
        ("hevc.mp4", "libx265", "yuv420p"),
        ("vp9.webm", "libvpx-vp9", "yuv420p"),
        ("vp8.webm", "libvpx", "yuv420p"),
        ("mpeg4.mov", "mpeg4", "yuv420p"),
        ("mjpeg.avi", "mjpeg", "yuvj420p"),
        ("anim.gif", "gif", "rgb8"),
        ("UPPER.MP4", "libx264", "yuv420p"),
    ],
)
def test_codecs_and_pixel_formats_decode_to_rgb(tmp_path, name, codec, pix_fmt):
    source = make_frames(24, 48, 64)
    path = write_test_video(tmp_path / name, frames=source, codec=codec, pix_fmt=pix_fmt)
    frames = load_video(path, 16)
    expected = source[sample_indices(24, 16)].float()
    assert frames.shape == (16, 3, 48, 64)
    error = (frames.float() - expected).abs().mean()
    # Lossy codecs and 8-bit palettes (gif) blur colours; swapped channels or wrong frames give errors > 40.
    assert error < (25 if codec == "gif" else 10), f"mean abs error {error:.1f}"
    assert frames[:, :, :8, :8].float().mean() > 200, "white corner block must stay top-left"


@pytest.mark.parametrize("rotation, corner", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_rotation_metadata_is_applied_like_ffmpeg(tmp_path, rotation, corner):
    # Expected corners were checked against ffmpeg's autorotate (ffmpeg -i v.mp4 -f rawvideo) for the
    # display-matrix rotations PyAV writes.
    path = write_test_video(tmp_path / "rotated.mp4", 4, 64, 48, rotation=rotation)
    frames = load_video(path)
    height, width = (64, 48) if rotation % 180 else (48, 64)
    assert frames.shape == (4, 3, height, width)
    corners = {
        "top-left": frames[0, :, :8, :8], "top-right": frames[0, :, :8, -8:],
        "bottom-left": frames[0, :, -8:, :8], "bottom-right": frames[0, :, -8:, -8:],
    }
    assert corners[corner].float().mean() > 200
    assert all(block.float().mean() < 200 for name, block in corners.items() if name != corner)


def test_rotation_matches_ffmpeg_binary(tmp_path):
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is needed as the reference decoder (`python -m videoscore_reward.testing.system_tools` installs it)"
    path = write_test_video(tmp_path / "r.mp4", 2, 64, 48, rotation=90, codec="libx264rgb", pix_fmt="rgb24",
                            options=None)
    raw = subprocess.run([ffmpeg, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    reference = torch.from_numpy(np.frombuffer(raw, np.uint8).reshape(64, 48, 3).copy()).permute(2, 0, 1)
    assert torch.equal(load_video(path)[0], reference)


def test_container_without_frame_count_is_counted(tmp_path):
    path = write_test_video(tmp_path / "v.webm", 40, 32, 32, codec="libvpx-vp9")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # webm headers carry no frame count
    frames = load_video(path, 16)
    assert torch.equal(frames, decode_all(path)[sample_indices(40, 16)])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        load_video(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoLoadError, match=r"empty.mp4 is empty \(0 bytes\)"):
        load_video(tmp_path / "empty.mp4")


def test_not_a_video(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(VideoLoadError, match="notes.mp4 is not a readable video"):
        load_video(tmp_path / "notes.mp4")


def test_directory(tmp_path):
    with pytest.raises(VideoLoadError, match="is a directory"):
        load_video(tmp_path)


def test_audio_only(tmp_path):
    path = write_audio_only(tmp_path / "sound.mp4", 20)
    with pytest.raises(VideoLoadError, match=r"sound.mp4 has no video stream \(streams found: audio\)"):
        load_video(path)


def test_truncated_file_gives_decoded_frames_with_warning(tmp_path):
    # The index comes first, so the header announces 60 frames the truncated file lacks.
    cut = write_truncated_video(tmp_path / "cut.mp4", path := tmp_path / "full.mp4", 60)
    with pytest.warns(UserWarning, match=r"cut.mp4 looks damaged: its data ends at [\d.]+ s of the 7.50 s the container declares"):
        frames = load_video(cut, 16)
    assert 0 < frames.shape[0] <= 16
    full = decode_all(path)
    # The frames that did decode are real frames of the video, spread over what survived.
    matches = [int(((full.float() - f.float()).abs().mean(dim=(1, 2, 3)) < 1).nonzero()[0]) for f in frames]
    assert matches == sorted(matches) and matches[0] == 0


def test_truncated_to_nothing_is_an_error(tmp_path):
    path = write_test_video(tmp_path / "full.mp4", 30, 64, 48, options={"movflags": "faststart"})
    cut = tmp_path / "stub.mp4"
    cut.write_bytes(path.read_bytes()[:600])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(VideoLoadError, match="stub.mp4"):
            load_video(cut)


def test_loaded_video_scores_like_its_frames(tiny_reward, tmp_path):
    path = write_test_video(tmp_path / "v.mkv", 20, 64, 48, codec="libx264rgb", pix_fmt="rgb24")
    frames = load_video(path, tiny_reward.num_frames)
    torch.testing.assert_close(
        tiny_reward([frames], "p").scores, tiny_reward(decode_all(path)[None], "p").scores, atol=1e-5, rtol=0
    )


def test_stream_copy_cut_with_edit_list_is_not_damaged(tmp_path):
    # `ffmpeg -ss T -c copy` keeps the packets from the keyframe before T and hides the ones before T
    # with an edit list: the header counts them, the decoder drops them. Nothing is wrong with the file.
    source = tmp_path / "source.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3", "-c:v", "libx264", "-bf", "3", "-g", "12", source)
    cut = tmp_path / "cut.mp4"
    ffmpeg("-ss", "0.9", "-i", source, "-c", "copy", cut)
    everything = decode_all(cut)
    with av.open(str(cut)) as container:
        assert container.streams.video[0].frames > everything.shape[0], "the header must count the hidden packets"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = load_video(cut, 16)
    assert torch.equal(frames, everything[sample_indices(everything.shape[0], 16)])


def test_avi_with_dropped_frames_is_not_damaged(tmp_path):
    # Capture AVIs count dropped frames in the header; the demuxer never returns them.
    path = tmp_path / "dropped.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2", "-vf", r"select='not(between(n\,10\,19))'",
           "-fps_mode", "passthrough", "-c:v", "mpeg4", path)
    everything = decode_all(path)
    assert everything.shape[0] == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames = load_video(path, 16)
    assert torch.equal(frames, everything[sample_indices(40, 16)])


def test_corrupt_packets_cost_only_their_frames(tmp_path):
    path = write_test_video(tmp_path / "v.mp4", 48, 64, 48, options={"movflags": "faststart"})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(np.random.default_rng(1).integers(0, 256, 200, dtype=np.uint8))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"broken.mp4 looks damaged: \d+ packet\(s\) could not be decoded") as caught:
        frames = load_video(broken, 16)
    assert frames.shape[0] == 16
    # Decoding goes on past the bad packets (it used to stop at the first, halfway through).
    decoded = int(re.search(r"Sampled from the (\d+) frames", str(caught[0].message)).group(1))
    assert 40 <= decoded < 48


def test_truncated_file_without_header_count_is_reported(tmp_path):
    cut = write_truncated_video(tmp_path / "cut.mkv", tmp_path / "full.mkv", 60)
    with pytest.warns(UserWarning, match=r"cut.mkv looks damaged: its data ends at [\d.]+ s of the 7.50 s"):
        frames = load_video(cut, 16)
    assert frames.shape[0] == 16


def test_cover_art_is_not_a_video(tmp_path):
    path = tmp_path / "song.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i", "color=red:size=64x64:d=0.04",
           "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v:0", "attached_pic", path)
    with pytest.raises(VideoLoadError, match=r"song.mp4 has no video, only a cover image \(attached picture\)"):
        load_video(path)


def test_unreadable_mp4_message_names_the_likely_cause(tmp_path):
    path = write_test_video(tmp_path / "recording.mp4", 30, 64, 48)  # index (moov) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoLoadError, match="is not a readable video file") as error:
        load_video(cut)
    message = str(error.value)
    assert message.startswith(f"{cut} is not a readable video file (Invalid data found when processing input).")
    assert "moov atom" in message and "Errno" not in message and message.count(str(cut)) == 1


def test_frame_size_change_names_the_sizes(tmp_path):
    parts = []
    for size in ("64x48", "80x64"):
        parts.append(tmp_path / f"{size}.ts")
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1", "-c:v", "libx264", "-f", "mpegts", parts[-1])
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    with pytest.raises(VideoLoadError, match=r"joined.ts: the frame size changes within the video \(64x48, 80x64\)"):
        load_video(joined, 16)
