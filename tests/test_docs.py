"""Every command line the README and the docs show in a code block works as written.

Each is parsed with ``--print_config`` (its command exists, every option and value it gives is accepted: nothing
runs, so the data it names need not be here). Those that use the project's built-in data and take seconds also run
for real, as a new user runs them after ``make demo``, in a folder laid out like the project's (``data/synth``: the
small synthetic set; ``runs/synth_x3d_tiny/logs/version_0``: a `videoml fit` run of the demo config), and exit 0.
The others train or benchmark for minutes (their own tests run them on small inputs), or name data that only a
user has (``/data/val``, ``model.ckpt``).
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"|", ">", "&&", ";", "&"}  # lines that chain commands are shown as shell, not as one command
RUN_AS_WRITTEN = [  # in this order (prepare before what reads its output)
    "videoml --help",
    "videoml models",
    "videoml data check data/synth/videos",
    "videoml data prepare data/synth data/synth-prepared --short-side 88",
    "videoml data shard data/synth-prepared data/synth-shards",
    "videoml infer data/synth/videos -m runs/synth_x3d_tiny/logs/version_0/checkpoints/last.ckpt -o preds.jsonl",
    "videoml infer data/synth/videos -m runs/synth_x3d_tiny/logs/version_0/checkpoints/last.ckpt -o predictions.jsonl",
    "videoml extract data/synth/videos -m runs/synth_x3d_tiny/logs/version_0/checkpoints/last.ckpt -o features/",
    "videoml report runs/synth_x3d_tiny/logs/version_0",
    "videoml export runs/synth_x3d_tiny/logs/version_0/checkpoints/last.ckpt -f all -o export/",
]
# Parses each command line given as JSON (a list of argument lists) in one process, as `videoml ARGS --print_config`
PARSE = """
import contextlib, io, json, sys
from videoml.cli import main
results = []
for args in json.loads(sys.argv[1]):
    printed = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(printed):
        try:
            code = main([*args, "--print_config"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    results.append([code, printed.getvalue()[-1500:]])
print(json.dumps(results))
"""


def command_lines() -> list[tuple[str, str]]:
    """(page, line) of each `videoml ...` line in the pages' fenced code blocks (continuations joined, comments
    dropped, ``.venv/bin/`` left out)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip().removeprefix(".venv/bin/")
                if line.startswith("videoml ") and not SHELL & set(shlex.split(line)):
                    found.append((page.relative_to(ROOT).as_posix(), line))
    return found


LINES = command_lines()


def test_the_pages_show_command_lines_including_the_no_x_forms():
    assert len(LINES) > 25 and any(" --no-" in line for _, line in LINES)
    assert set(RUN_AS_WRITTEN) <= {line for _, line in LINES}  # (a line changed in the docs: change it here too)


def test_every_documented_command_line_is_accepted_as_written():
    parsed = subprocess.run([sys.executable, "-c", PARSE, json.dumps([shlex.split(line)[1:] for _, line in LINES])],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    refused = [f"{page}: {line}\n{printed}" for (page, line), (code, printed) in
               zip(LINES, json.loads(parsed.stdout.splitlines()[-1])) if code != 0]
    assert not refused, "\n".join(refused)


@pytest.fixture(scope="module")
def project(small_synth, checkpoint, tmp_path_factory) -> Path:
    """A folder laid out as the project's after `make demo`, with the small set and a quick run of the demo config."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "data").mkdir()
    (folder / "data" / "synth").symlink_to(small_synth.root)
    (folder / "runs" / "synth_x3d_tiny" / "logs").mkdir(parents=True)
    (folder / "runs" / "synth_x3d_tiny" / "logs" / "version_0").symlink_to(checkpoint.parents[1])
    (folder / "configs").symlink_to(ROOT / "configs")
    return folder


@pytest.mark.slow
def test_the_documented_command_lines_on_the_built_in_data_run_as_written(project):
    for line in RUN_AS_WRITTEN:
        result = subprocess.run([sys.executable, "-m", "videoml", *shlex.split(line)[1:]], capture_output=True,
                                text=True, cwd=project, timeout=600)
        assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
        assert "Warning" not in result.stderr and "Traceback" not in result.stderr, f"{line}\n{result.stderr}"
    assert len((project / "preds.jsonl").read_text().splitlines()) == len(list((project / "data" / "synth" /
                                                                                "videos").rglob("*.mp4")))
    assert {p.suffix for p in (project / "export").iterdir()} >= {".ts", ".pt2", ".onnx"}
