"""The optional dependencies of each extra, and the one error that says what to install.

Like diffusers' `utils/import_utils.py`: one table (extra -> the modules it brings) and one check,
`require(extra, feature)`, so every optional feature fails the same way, in one line, with an
install command that works for how this copy of the package was installed (a checkout or an index).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

EXTRAS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "diffusers": ("diffusers", "ftfy"),  # Wan's pipelines clean prompts with ftfy
    "train": ("diffusers", "peft"),
    "app": ("gradio",),
    "eval": ("scipy", "matplotlib"),
    "serve": ("ray",),
})
"""Each extra of pyproject.toml, with the modules it makes importable."""


class MissingExtraError(ImportError):
    """An optional feature was used without its extra installed; the message says what to install."""


def is_available(module: str) -> bool:
    """Whether `module` (a dotted name) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module without a spec
        return False


def _checkout() -> Path | None:
    """The source tree this package runs from (editable install or PYTHONPATH), if it is one."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def install_command(extra: str) -> str:
    """The pip command that installs `extra` for this copy of the package: `pip install -e ".[app]"`
    from a checkout (with its constraints file, which keeps the installed torch), or the package from
    the index otherwise."""
    root = _checkout()
    if root is None:
        return f"pip install 'videoscore-reward[{extra}]'"
    here = root == Path(os.getcwd()).resolve()
    where = "." if here else str(root)
    constraints = root / "constraints.txt"
    pin = f"-c {'constraints.txt' if here else constraints} " if constraints.is_file() else ""
    return f'pip install {pin}-e "{where}[{extra}]"'


def require(extra: str, feature: str) -> None:
    """Raise `MissingExtraError` unless every module of `extra` is importable.

    feature: what needs it, for the message ("The web app", "videoscore_reward.integrations.diffusers").
    """
    if extra not in EXTRAS:
        raise ValueError(f"Unknown extra {extra!r}; expected one of {sorted(EXTRAS)}.")
    missing = [module for module in EXTRAS[extra] if not is_available(module)]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(m.split('.')[0] for m in missing)} (the [{extra}] extra): "
            f"{install_command(extra)}"
        )
