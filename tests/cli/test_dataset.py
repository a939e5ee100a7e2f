import hashlib

import pandas as pd
import pytest

from videoscore_reward import ASPECTS
from videoscore_reward.cli import main
from videoscore_reward.folder import METADATA_COLUMNS


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


def test_organize_is_idempotent_and_never_overwrites(scored, tmp_path, capsys):
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
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out)]) == 1
    assert "exists with other content; not overwriting it" in capsys.readouterr().err
    assert video.read_bytes() == b"other content"


def test_organize_dry_run_writes_nothing(scored, tmp_path, capsys):
    root, scores = scored
    out = tmp_path / "dry"
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out), "--dry-run"]) == 0
    assert not out.exists()
    assert "dry run: would have copied 2" in capsys.readouterr().out


def test_organize_argument_errors(scored, tmp_path, capsys):
    root, scores = scored
    out = tmp_path / "dataset"
    assert main(["organize", str(tmp_path / "nowhere"), "--scores", str(scores), "--out", str(out)]) == 2
    assert main(["organize", str(root), "--scores", str(tmp_path / "none.csv"), "--out", str(out)]) == 2
    (tmp_path / "other").mkdir()
    assert main(["organize", str(tmp_path / "other"), "--scores", str(scores), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "none.csv" in err and "none of the videos listed in" in err
    assert "Traceback" not in err and not out.exists()



@pytest.mark.parametrize("name", ["/etc/passwd", "../x.mp4", "../../etc/hostname", "link.mp4"])
def test_organize_refuses_paths_outside_the_folder_and_copies_nothing(scored, tmp_path, capsys, name):
    # issue 11 item 2: absolute, '..' and a link out of the folder; `upload` sends only regular
    # files inside the organised folder (tests/cli/test_upload.py::test_upload_sends_nothing_from_outside_the_folder).
    root, scores = scored
    (tmp_path / "x.mp4").write_bytes((root / "a_cat_seed_1.mp4").read_bytes())
    (root / "link.mp4").symlink_to(tmp_path / "x.mp4")
    table = pd.read_csv(scores, keep_default_na=False)
    table.loc[0, "video_name"] = name
    table.loc[0, "error"] = ""
    hostile = tmp_path / "hostile.csv"
    table.to_csv(hostile, index=False)
    out = tmp_path / "dataset"
    assert main(["organize", str(root), "--scores", str(hostile), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"names 1 video(s) outside {root} ({name!r}): every video_name must lie inside" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_organize_refuses_a_malformed_metadata_csv_in_one_line(scored, tmp_path, capsys):
    root, scores = scored
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "metadata.csv").write_bytes(b'file_name,prompt\n"unclosed,1\n\xff\xfe')
    assert main(["organize", str(root), "--scores", str(scores), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "metadata.csv is not a readable metadata.csv" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["metadata.csv"]
