"""Issue 11: every bad command-line input is one line with a non-zero exit, before the model loads
where it can be; bad files inside a folder become error rows, never silence."""

import os
import re
import socket

import pandas as pd
import pytest

from videoscore_reward.cli import main
from videoscore_reward.folder import read_table
from videoscore_reward.folder.find import MAX_SIDECAR_BYTES
from videoscore_reward.testing import make_frames, write_test_video


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a command gets as far as loading a model (or the app)."""
    monkeypatch.setattr("videoscore_reward.cli.commands._load_reward", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr("videoscore_reward.app.launch", lambda *a, **k: pytest.fail("the app was launched"), raising=False)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "videos"
    write_test_video(root / "a_cat.mp4", 4, 32, 32)
    return root


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "usage:" not in err, err
    return err


@pytest.mark.parametrize("kind, match", [
    ("prompts", r"--out .*prompts\.csv is the --prompts-csv file"),
    ("unrelated", r"exists and is not a results table of `videoscore-reward score` \(columns \['name', 'notes'\]"),
    ("folder", r"is not a file; --out must be a results table"),
    ("binary", r"exists and is not a results table \(UnicodeDecodeError\); not overwriting it"),
    ("read-only", r"--out: cannot write in .* \(Permission denied\)"),
])
def test_out_must_be_a_results_table_or_absent(folder, tmp_path, capsys, monkeypatch, no_model, kind, match):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("video_name,prompt\na_cat.mp4,a cat\n")
    out = {"prompts": prompts, "folder": tmp_path / "out.csv", "read-only": tmp_path / "ro" / "out.csv"}.get(kind, tmp_path / "x.csv")
    if kind == "unrelated":
        out.write_text("name,notes\nkeep,me\n")
    elif kind == "folder":
        out.mkdir()
    elif kind == "binary":
        out.write_bytes(bytes(range(256)))
    elif kind == "read-only":  # as root a chmod does not stop writes: fail the probe file instead
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr("videoscore_reward.cli.checks.tempfile.TemporaryFile", refuse)
    before = out.read_bytes() if out.is_file() else None
    assert main(["score", str(folder), "--out", str(out), "--prompts-csv", str(prompts)]) == 2
    assert re.search(match, one_line(capsys))
    assert (out.read_bytes() if out.is_file() else None) == before


@pytest.mark.parametrize("argv, match", [
    (["score"], r"^videoscore-reward score: error: the following arguments are required: dir \(see videoscore-reward score --help\)$"),
    (["app", "--port", "99999"], r"argument --port: expected a port number from 1 to 65535, got '99999'"),
    (["app", "--max-upload-mb", "nan"], r"argument --max-upload-mb: expected a finite number > 0, got 'nan'"),
    (["score", ".", "--weights", "visual quality=1,visual quality=2"], r"aspect 'visual quality' is given twice"),
    (["frobnicate"], r"argument command: invalid choice: 'frobnicate'"),
])
def test_argument_errors_are_one_line_without_the_usage_block(capsys, no_model, argv, match):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert re.search(match, one_line(capsys).strip())


def test_app_address_is_checked_before_the_model_loads(capsys, no_model):
    pytest.importorskip("gradio")
    assert main(["app", "--host", "256.1.1.1"]) == 2
    assert one_line(capsys) == "error: --host '256.1.1.1' is not a valid IP address or host name.\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    assert one_line(capsys) == f"error: port {port} on 127.0.0.1 is in use; choose another with --port.\n"


def test_unreadable_folders_get_an_error_row_or_a_clear_failure(tmp_path, tiny_checkpoint_dir, capsys, monkeypatch):
    # Root ignores permission bits, so listing is refused where os.walk asks for it.
    root = tmp_path / "videos"
    write_test_video(root / "a.mp4", 4, 32, 32)
    write_test_video(root / "locked" / "b.mp4", 4, 32, 32)
    scandir = os.scandir
    locked = {str(root / "locked")}

    def refusing(path="."):
        if os.fspath(path) in locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    table = read_table(root / "evaluation_results.csv").set_index("video_name")
    assert table.loc["locked", "error"] == "PermissionError: cannot list the folder locked: the videos in it were not scored"
    assert table.loc["a.mp4", "error"] == "" and "failed: locked: PermissionError" in capsys.readouterr().err

    locked.add(str(root))
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir)]) == 2
    assert one_line(capsys) == f"error: cannot list {root} (Permission denied)\n"


def test_a_bad_sidecar_is_flagged_and_the_video_scored_with_its_file_name(tmp_path, tiny_checkpoint_dir, capsys):
    root = tmp_path / "videos"
    for seed, name in enumerate(("bad_utf8", "huge", "good")):
        write_test_video(root / f"{name}.mp4", 4, 32, 32, frames=make_frames(4, 32, 32, seed=seed))
    (root / "bad_utf8.txt").write_bytes(b"a cat \xff\xfe")
    (root / "huge.txt").write_bytes(b"a" * (MAX_SIDECAR_BYTES + 1))  # the 6.7 MB file, cut short
    (root / "good.txt").write_text("a good prompt\n")
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    table = read_table(root / "evaluation_results.csv").set_index("video_name")
    assert table["reward"].notna().all()
    assert table["prompt"].to_dict() == {"bad_utf8.mp4": "bad utf8", "good.mp4": "a good prompt", "huge.mp4": "huge"}
    assert table.loc["bad_utf8.mp4", "error"] == (
        f"SidecarError: the prompt file {root / 'bad_utf8.txt'} is not UTF-8 text (byte 6); scored with the file-name prompt")
    assert table.loc["huge.mp4", "error"] == (
        f"SidecarError: the prompt file {root / 'huge.txt'} is over 64 KiB, too large for a prompt; scored with the file-name prompt")
    assert "scored 3 (2 flagged as damaged)" in capsys.readouterr().err


def test_prompts_csv_conflicts_are_errors_gaps_are_warnings(folder, tmp_path, tiny_checkpoint_dir, capsys, no_model):
    write_test_video(folder / "a_dog.mp4", 4, 32, 32)
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("video_name,prompt\na_cat.mp4,a cat\na_cat.mp4,a lion\n")
    assert main(["score", str(folder), "--prompts-csv", str(prompts)]) == 2
    assert "gives different prompts for the same video_name ['a_cat.mp4']; keep one row per video" in one_line(capsys)

    prompts.write_text("video_name,prompt\na_cat.mp4,a cat\na_cat.mp4,a cat\nelsewhere.mp4,x\n")
    with pytest.raises(pytest.fail.Exception, match="the model was loaded"):  # warnings, then on to the model
        main(["score", str(folder), "--prompts-csv", str(prompts)])
    err = capsys.readouterr().err
    assert "warning: --prompts-csv has no row for 1 video(s), e.g. 'a_dog.mp4'" in err
    assert f"warning: --prompts-csv names 1 video(s) not under {folder}, e.g. 'elsewhere.mp4': ignored" in err


def test_an_empty_folder_fails_before_the_model_loads(tmp_path, no_model, capsys):
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    (tmp_path / "nothing" / "notes.txt").write_text("not a video")
    assert main(["score", str(tmp_path / "nothing"), "--model", "tiny-random"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no videos (.mp4, ") and err.endswith(f"found under {tmp_path / 'nothing'}")
    assert "\n" not in err
