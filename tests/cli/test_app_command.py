import sys
import types

import pytest
import torch

from videoscore_reward.cli import main


@pytest.fixture
def launched(monkeypatch):
    """Stands in for videoscore_reward.app (gradio is not needed): records what `launch` gets."""
    seen = {}
    fake = types.ModuleType("videoscore_reward.app")
    fake.launch = lambda model, **kwargs: seen.update(model=model, **kwargs)
    monkeypatch.setitem(sys.modules, "videoscore_reward.app", fake)
    monkeypatch.setattr("videoscore_reward.cli.commands.check_listen", lambda host, port: None)  # fixed ports: never bound here
    return seen


def test_app_defaults(launched):
    assert main(["app"]) == 0
    assert launched == {"model": "TIGER-Lab/VideoScore-v1.1", "host": "127.0.0.1", "port": 7860, "share": False,
                        "device": None, "dtype": None, "num_frames": None, "max_upload_mb": 200}


def test_app_forwards_every_option(launched):
    assert main(["app", "--model", "tiny-random", "--host", "0.0.0.0", "--port", "7999", "--share", "--device", "cpu",
                 "--dtype", "bfloat16", "--num-frames", "8", "--max-upload-mb", "50"]) == 0
    assert launched == {"model": "tiny-random", "host": "0.0.0.0", "port": 7999, "share": True, "device": "cpu",
                        "dtype": torch.bfloat16, "num_frames": 8, "max_upload_mb": 50}


def test_app_rejects_bad_options(launched):
    for wrong in (["--port", "http"], ["--dtype", "fp8"], ["--num-frames", "0"]):
        with pytest.raises(SystemExit, match="^2$") as info:
            main(["app", *wrong])
        assert info.value.code == 2
    assert launched == {}


def test_app_with_an_unreachable_hub_model_fails_in_one_line(monkeypatch, tmp_path, capsys):
    pytest.importorskip("gradio")
    from huggingface_hub import constants

    from videoscore_reward.app import ui

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(ui, "_serve", lambda *args, **kwargs: pytest.fail("served without a model"))
    assert main(["app", "--model", "TIGER-Lab/VideoScore-v1.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Cannot load 'TIGER-Lab/VideoScore-v1.1'")
    assert "--model tiny-random" in err
