"""The README's commands and snippets are true: CI runs the documented test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    tests_section = README[README.index("\n## Tests\n"):]
    documented = re.search(r"```bash\n(.+?)\n```", tests_section, re.S).group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == documented
