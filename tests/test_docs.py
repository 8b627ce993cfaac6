"""Every command line the README and the docs show in a code block runs as written: its command exists and every
option and value it gives is accepted (parsed with --print_config, so nothing runs: the data it names need not be
here)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"|", ">", "&&", ";", "&"}  # lines that chain commands are shown as shell, not as one command


def command_lines() -> list[tuple[str, str]]:
    """(page, line) of each `videoml ...` line in the pages' fenced code blocks (continuations joined, comments
    dropped)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                if re.match(r"^(\.venv/bin/)?videoml ", line) and not SHELL & set(shlex.split(line)):
                    found.append((page.relative_to(ROOT).as_posix(), line))
    return found


LINES = command_lines()


def test_the_pages_show_command_lines_including_the_no_x_forms():
    assert len(LINES) > 25 and any(" --no-" in line for _, line in LINES)


@pytest.mark.parametrize("page, line", LINES, ids=[f"{p}: {line[:60]}" for p, line in LINES])
def test_a_documented_command_line_is_accepted_as_written(page, line):
    args = shlex.split(line)[1:]
    result = subprocess.run([sys.executable, "-m", "videoml", *args, "--print_config"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, f"{page}: {line}\n{result.stderr[-1500:]}"
