import os

import pytest

from videoscore_reward.cli import main
from videoscore_reward.folder import upload


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records the calls, sends nothing."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_commit(self, **kwargs):
        self.calls.append(("create_commit", kwargs))

    def commits(self):
        return [kwargs for verb, kwargs, *_ in self.calls if verb == "create_commit"]


@pytest.fixture
def organised(scored, tmp_path):
    root, scores = scored
    out = tmp_path / "dataset"
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out)]) == 0
    return out


def sent(commit):
    return {op.path_in_repo: op.path_or_fileobj for op in commit["operations"]}


def test_upload_sends_the_folder_as_a_dataset_in_one_commit(organised):
    api = RecordingApi()
    url = upload(organised, "me/scored-videos", private=True, api=api)
    assert url == "https://huggingface.co/datasets/me/scored-videos"
    assert api.calls[0] == ("create_repo", "me/scored-videos", {"repo_type": "dataset", "private": True, "exist_ok": True})
    (commit,) = api.commits()
    assert commit["repo_id"] == "me/scored-videos" and commit["repo_type"] == "dataset"
    local = sorted(p.relative_to(organised).as_posix() for p in organised.iterdir())
    assert sorted(sent(commit)) == local and len(local) == 5  # 2 videos, 2 captions, metadata.csv
    assert all(path == str(organised / name) for name, path in sent(commit).items())


def test_upload_sends_nothing_from_outside_the_folder(organised, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the hub")
    (organised / "link.txt").symlink_to(secret)
    (organised / "linked_dir").symlink_to(tmp_path, target_is_directory=True)
    (organised / ".cache").mkdir()
    (organised / ".cache" / "state").write_text("x")
    (organised / ".half-copied.mp4.tmp").write_text("x")
    api = RecordingApi()
    upload(organised, "me/scored-videos", api=api)
    paths = [path for commit in api.commits() for path in sent(commit).values()]
    assert paths and all(os.path.realpath(p).startswith(str(organised.resolve()) + os.sep) for p in paths)
    assert not [name for commit in api.commits() for name in sent(commit) if "link" in name or name.startswith(".")]


def test_large_folders_go_in_chunks_with_the_metadata_last(organised):
    api = RecordingApi()
    upload(organised, "me/scored-videos", api=api, files_per_commit=2)
    commits = api.commits()
    assert [len(c["operations"]) for c in commits] == [2, 2, 1]
    assert list(sent(commits[-1])) == ["metadata.csv"]
    assert [c["commit_message"].endswith(f"(part {i} of 3)") for i, c in enumerate(commits, 1)] == [True] * 3


def test_upload_requires_an_organised_folder(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        upload(tmp_path, "me/x", api=RecordingApi())
    assert main(["upload", str(tmp_path), "me/x"]) == 2
    assert "run `videoscore-reward organize` first" in capsys.readouterr().err


def one_line_error(capsys, token):
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: upload to me/scored-videos failed"), captured.err
    assert token not in captured.err + captured.out
    return lines[0]


def test_upload_offline_fails_with_one_line(organised, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert main(["upload", str(organised), "me/scored-videos"]) == 1
    assert "cannot reach the Hugging Face Hub" in one_line_error(capsys, "hf_secret_token_value")


def test_upload_without_network_fails_with_one_line(organised, monkeypatch, capsys):
    from huggingface_hub import constants

    # Online mode, but the Hub is a closed local port: what a machine without a network sees.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert main(["upload", str(organised), "me/scored-videos"]) == 1
    assert "cannot reach the Hugging Face Hub" in one_line_error(capsys, "hf_secret_token_value")
