import hashlib

import pandas as pd
import pytest

from videoscore_reward import ASPECTS
from videoscore_reward.cli import main
from videoscore_reward.dataset import METADATA_COLUMNS, upload
from videoscore_reward.testing import write_test_video


@pytest.fixture
def scored(tmp_path, tiny_checkpoint_dir):
    root = tmp_path / "gen"
    write_test_video(root / "a_cat_seed_1.mp4", 8, 32, 32)
    write_test_video(root / "sub" / "a_dog_seed_2.webm", 8, 32, 32, codec="libvpx-vp9")
    (root / "bad.mp4").write_text("x")
    assert main(["score", str(root), "--model", str(tiny_checkpoint_dir), "--no-progress"]) == 0
    return root, root / "evaluation_results.csv"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_organize_builds_a_videofolder_dataset(scored, tmp_path):
    root, scores = scored
    out = tmp_path / "dataset"
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out), "--prefix", "style, "]) == 0
    metadata = pd.read_csv(out / "metadata.csv")
    assert list(metadata.columns) == METADATA_COLUMNS
    assert sorted(metadata["original_video_name"]) == ["a_cat_seed_1.mp4", "sub/a_dog_seed_2.webm"]
    table = pd.read_csv(scores).set_index("video_name")
    for row in metadata.itertuples(index=False):
        video = out / row.file_name
        assert sha(video) == sha(root / row.original_video_name)
        assert (out / row.file_name).with_suffix(".txt").read_text() == row.prompt
        assert row.prompt == "style, " + table.loc[row.original_video_name, "prompt"]
        assert row.reward == pytest.approx(table.loc[row.original_video_name, "reward"])

    import datasets

    dataset = datasets.load_dataset("videofolder", data_dir=str(out), split="train")
    assert {*ASPECTS, "reward", "prompt", "original_video_name"} <= set(dataset.column_names)
    media = [name for name, feature in dataset.features.items() if type(feature).__name__ == "Video"]
    assert media == ["video"], "only the copied video may be read as a media file"
    loaded = dataset.remove_columns("video").to_pandas().set_index("original_video_name")
    assert loaded.loc["a_cat_seed_1.mp4", "reward"] == pytest.approx(table.loc["a_cat_seed_1.mp4", "reward"])


def test_organize_is_idempotent_and_never_overwrites(scored, tmp_path):
    root, scores = scored
    out = tmp_path / "dataset"
    main(["organize", str(root), "--scores", str(scores), "--out", str(out)])
    before = {p.name: sha(p) for p in out.iterdir()}
    main(["organize", str(root), "--scores", str(scores), "--out", str(out)])
    assert {p.name: sha(p) for p in out.iterdir()} == before
    assert len(pd.read_csv(out / "metadata.csv")) == 2

    video = next(out.glob("*.mp4"))
    pd.read_csv(out / "metadata.csv").iloc[:0].to_csv(out / "metadata.csv", index=False)  # forget the rows
    video.write_bytes(b"other content")
    with pytest.raises(FileExistsError, match="not overwriting"):
        main(["organize", str(root), "--scores", str(scores), "--out", str(out)])
    assert video.read_bytes() == b"other content"


def test_organize_dry_run_writes_nothing(scored, tmp_path, capsys):
    root, scores = scored
    out = tmp_path / "dry"
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out), "--dry-run"]) == 0
    assert not out.exists()
    assert "dry run: would have copied 2" in capsys.readouterr().out


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records calls, sends nothing."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))

    def upload_large_folder(self, **kwargs):
        self.calls.append(("upload_large_folder", kwargs))


def test_upload_sends_only_the_folder_as_a_dataset(scored, tmp_path):
    root, scores = scored
    out = tmp_path / "dataset"
    main(["organize", str(root), "--scores", str(scores), "--out", str(out)])
    api = RecordingApi()
    url = upload(out, "me/scored-videos", private=True, api=api)
    assert url == "https://huggingface.co/datasets/me/scored-videos"
    (create, repo_id, kwargs), (verb, upload_kwargs) = api.calls
    assert create == "create_repo" and repo_id == "me/scored-videos"
    assert kwargs == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert verb == "upload_folder"
    assert upload_kwargs["repo_type"] == "dataset" and upload_kwargs["repo_id"] == "me/scored-videos"
    assert upload_kwargs["folder_path"] == out  # only the organised folder, never the source folder


def test_upload_requires_an_organised_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        upload(tmp_path, "me/x", api=RecordingApi())


def test_upload_without_network_fails_with_one_line(scored, tmp_path, monkeypatch, capsys):
    root, scores = scored
    out = tmp_path / "dataset"
    main(["organize", str(root), "--scores", str(scores), "--out", str(out)])
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    assert main(["upload", str(out), "me/scored-videos"]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: upload to me/scored-videos failed")
    assert "hf_secret_token_value" not in captured.err + captured.out


def test_app_subcommand_forwards_options(monkeypatch):
    import sys
    import types

    seen = {}
    fake = types.ModuleType("videoscore_reward.app")
    fake.launch = lambda model, **kwargs: seen.update(model=model, **kwargs)
    monkeypatch.setitem(sys.modules, "videoscore_reward.app", fake)
    assert main(["app", "--model", "tiny-random", "--port", "7999"]) == 0
    assert seen == {"model": "tiny-random", "host": "127.0.0.1", "port": 7999, "share": False, "device": None,
                    "dtype": None, "num_frames": None, "max_upload_mb": 200}
