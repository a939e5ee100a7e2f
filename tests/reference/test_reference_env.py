"""The reference environments are stamped complete only once they import what they need, and rebuilt
when they stop doing so (the bug this guards against: a broken env stamped once poisoned every run)."""

import pytest
from reference_env import reference_python


def test_env_is_checked_before_it_is_stamped_and_rebuilt_when_broken(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "videoscore-reward" / "probe-venv"
    # No packages to install (no index needed): the check alone decides.
    with pytest.raises(pytest.fail.Exception, match=r"The probe environment in .*probe-venv was built but does "
                                                    r"not import what it needs:\n(.|\n)*No module named 'no_such_module'"):
        reference_python("probe", [], imports=["import json", "import no_such_module"])
    assert (folder / "bin" / "python").exists() and not (folder / "complete.txt").exists()

    python = reference_python("probe", [], imports=["import json"])
    assert python == folder / "bin" / "python" and (folder / "complete.txt").exists()
    marker = folder / "built-here"
    marker.touch()
    assert reference_python("probe", [], imports=["import json"]) == python and marker.exists(), "a good env is kept"

    (folder / "bin" / "python").unlink()  # broken, but still stamped complete
    assert reference_python("probe", [], imports=["import json"]).exists()
    assert not marker.exists(), "a broken env is rebuilt from scratch"
