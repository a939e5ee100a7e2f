"""The optional-dependency table: one check, one error format, an install command that works."""

from pathlib import Path

import pytest

from videoscore_reward import extras
from videoscore_reward.cli import main

ROOT = Path(extras.__file__).resolve().parent.parent


def test_missing_module_names_the_extra_and_the_checkout_install(monkeypatch):
    monkeypatch.setattr(extras, "EXTRAS", {"app": ("gradio", "videoscore_no_such_module")})
    monkeypatch.chdir(ROOT)
    with pytest.raises(extras.MissingExtraError, match=r'^The web app needs videoscore_no_such_module \(the \[app\] extra\): '
                                                       r'pip install -c constraints.txt -e "\.\[app\]"$'):
        extras.require("app", "The web app")


def test_install_command_from_elsewhere_names_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert extras.install_command("train") == f'pip install -c {ROOT / "constraints.txt"} -e "{ROOT}[train]"'


def test_unknown_extra_and_present_modules():
    with pytest.raises(ValueError, match=r"Unknown extra 'gpu'; expected one of \['app', 'diffusers', 'eval', 'serve', 'train'\]"):
        extras.require("gpu", "x")
    assert extras.is_available("os.path") and not extras.is_available("videoscore_no_such_module.sub")
    extras.require("app", "The web app")  # gradio is installed for the tests: no error


def test_app_command_without_gradio_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(extras, "is_available", lambda module: module != "gradio")
    assert main(["app", "--model", "tiny-random"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: The web app needs gradio (the [app] extra): pip install")
    assert extras.install_command("app") in err
