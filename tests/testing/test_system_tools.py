"""`python -m videoscore_reward.testing.system_tools`: installs ffmpeg/Chromium as root with apt, else
stops with the exact command to run."""

import pytest

from videoscore_reward.testing import system_tools


@pytest.fixture
def nothing_installed(monkeypatch):
    monkeypatch.setattr(system_tools, "_TOOLS", {"ffmpeg": lambda: False, "chromium": lambda: False})
    calls = []
    monkeypatch.setattr(system_tools.subprocess, "run", lambda *a, **k: calls.append(a[0]))
    return calls


def test_nothing_to_do_when_both_are_there(monkeypatch, capsys):
    monkeypatch.setattr(system_tools, "_TOOLS", {"ffmpeg": lambda: True, "chromium": lambda: True})
    monkeypatch.setattr(system_tools.subprocess, "run", lambda *a, **k: pytest.fail("ran a command"))
    assert system_tools.main() == 0
    assert capsys.readouterr().err == ""


def test_not_root_gets_the_exact_command(nothing_installed, monkeypatch, capsys):
    monkeypatch.setattr(system_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(system_tools.os, "geteuid", lambda: 1000)
    assert system_tools.main() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "sudo apt-get update && sudo apt-get install -y -q --no-install-recommends ffmpeg chromium" in err
    assert nothing_installed == []


def test_without_apt_it_names_what_is_missing(nothing_installed, monkeypatch, capsys):
    monkeypatch.setattr(system_tools.shutil, "which", lambda name: None)
    assert system_tools.main() == 1
    assert "the tests need ffmpeg and chromium" in capsys.readouterr().err
    assert nothing_installed == []


def test_root_installs_with_apt_and_checks_again(nothing_installed, monkeypatch, capsys):
    monkeypatch.setattr(system_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(system_tools.os, "geteuid", lambda: 0)

    class Done:
        returncode = 0

    installed = {"ffmpeg": False, "chromium": False}

    def run(command, env):
        nothing_installed.append(command)
        assert env["DEBIAN_FRONTEND"] == "noninteractive"
        if command[1] == "install":
            installed.update(ffmpeg=True, chromium=True)
        return Done()

    monkeypatch.setattr(system_tools.subprocess, "run", run)
    monkeypatch.setattr(system_tools, "_TOOLS", {name: (lambda name=name: installed[name]) for name in installed})
    assert system_tools.main() == 0
    assert nothing_installed == [["apt-get", "update", "-q"],
                                 ["apt-get", "install", "-y", "-q", "--no-install-recommends", "ffmpeg", "chromium"]]
