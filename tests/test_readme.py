"""The README is true: CI runs its test command, and every ```python snippet runs as printed.

A snippet runs in a fresh folder holding `outputs/` (three small videos), offline and on CPU, with
the hub ids of VideoScore checkpoints swapped for "tiny-random" and "cuda" devices for "cpu". Three
HTML comments on the line before a snippet steer it:

- `<!-- no-test: why -->`: not run (code that needs a server or another project's trainer).
- `<!-- test-setup: videoscore-reward ARGS -->`: that command first (with `--model tiny-random`).
- A statement whose last line ends in a comment `# ... offline: EXPR (from MODULE)` is replaced by
  EXPR (an assignment by `target = EXPR`), with `from MODULE import NAME` for EXPR's first name:
  it tells a reader how to try the snippet offline.
"""

import ast
import re
import shlex
from pathlib import Path

import pytest

from videoscore_reward.cli import main
from videoscore_reward.testing import write_test_video

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPET = re.compile(r"^(?:<!-- (no-test|test-setup): (.+?) -->\n)?```python\n(.*?)^```", re.S | re.M)
OFFLINE = re.compile(r"#.*?\boffline:\s*(.+?)(?:\s+\(from ([\w.]+)\))?\s*$")


def _snippets():
    for match in SNIPPET.finditer(README):
        line = README.count("\n", 0, match.start(3))
        heading = re.findall(r"^##+ (.+)$", README[: match.start()], re.M)[-1]
        yield pytest.param(match.group(1), match.group(2), match.group(3), id=f"line-{line}-{heading[:30]}")


def test_ci_runs_the_readme_test_command():
    tests_section = README[README.index("\n## Tests\n"):]
    documented = re.search(r"```bash\n(.+?)\n```", tests_section, re.S).group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == documented


def offline(code: str) -> str:
    """The snippet as the test runs it: tiny-random, CPU, and the `# offline:` replacements."""
    code = re.sub(r'"TIGER-Lab/VideoScore[\w.-]*"', '"tiny-random"', code)
    code = re.sub(r'"cuda(:\d+)?"', '"cpu"', code)
    lines = code.splitlines()
    imports = []
    for statement in reversed(ast.parse(code).body):  # bottom up: replacements keep earlier line numbers
        found = OFFLINE.search(lines[statement.end_lineno - 1])
        if found is None:
            continue
        expression, module = found.groups()
        if module:
            name = re.match(r"[A-Za-z_]\w*", expression).group()
            imports.append(f"from {module} import {name}")
        if isinstance(statement, ast.Assign):
            expression = f"{', '.join(ast.unparse(t) for t in statement.targets)} = {expression}"
        lines[statement.lineno - 1 : statement.end_lineno] = [expression]
    return "\n".join([*imports, *lines]) + "\n"


def test_offline_rewrites_a_snippet():
    code = ('reward = VideoScoreReward.from_pretrained("TIGER-Lab/VideoScore-v1.1", device="cuda:1")\n'
            "pipe = Pipeline.from_pretrained(\n    'x/y',\n).to('cuda')  # offline: tiny_pipeline(\"animatediff\") (from videoscore_reward.testing)\n"
            "pipe(prompts)\n")
    assert offline(code) == (
        "from videoscore_reward.testing import tiny_pipeline\n"
        'reward = VideoScoreReward.from_pretrained("tiny-random", device="cpu")\n'
        'pipe = tiny_pipeline("animatediff")\n'
        "pipe(prompts)\n"
    )


@pytest.mark.parametrize("mark, argument, code", list(_snippets()))
def test_readme_snippet_runs(mark, argument, code, tmp_path, monkeypatch):
    if mark == "no-test":
        pytest.skip(argument)
    monkeypatch.chdir(tmp_path)
    for name in ("a_cat_playing_piano_seed_0.mp4", "a_cat_playing_piano_seed_1.mp4", "a_red_fox_seed_0.mp4"):
        write_test_video(tmp_path / "outputs" / name, 8, 32, 32)
    if mark == "test-setup":
        program, *args = shlex.split(argument)
        assert program == "videoscore-reward", f"test-setup runs videoscore-reward commands, got {argument!r}"
        assert main([*args, *([] if "--model" in args else ["--model", "tiny-random"]), "--no-progress"]) == 0
    exec(compile(offline(code), f"README.md snippet ({tmp_path.name})", "exec"), {"__name__": "__readme__"})
