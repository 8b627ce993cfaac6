"""The fuzz campaign over the commands' other inputs: mutated report folders and configuration files of every command
with values of every wrong kind (published weights served mutated: tests/models/test_zoo.py). Each case runs
through the command line's own entry point (``videoml.cli.main``, in this process: hundreds of cases in seconds)
or the public API, and must end in a result or one line naming the problem: never a traceback, never a file left
behind that a later run would trust.

VIDEOML_FUZZ_SEED and VIDEOML_FUZZ_CASES change the campaign, as in test_fuzz.py (here a fifth of the cases each).
"""

import csv
import io
import random
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml
from mutate import CASES, SEED

from videoml.cli import main
from videoml.evaluation import ClassReport

N = max(CASES // 5, 8)
WRONG = [None, -1, 0, 2**70, 1e308, float("nan"), float("inf"), "", "x" * 5000, "@", "\udcff", [], {}, [[[1]]],
         {"a": {"b": [1, {"c": None}]}}, True, "1e999", "-0", "../../etc/passwd", "\x00"]


def _run(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of ``videoml ARGV`` run in this process; an exception that escapes fails the case."""
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as e:  # --help and --print_config exit through argparse
            status = e.code
    return status, err.getvalue()


def _one_line_or_nothing(status, stderr: str, case: str) -> None:
    assert "Traceback" not in stderr, f"{case}\n{stderr[-3000:]}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status:
        assert status in (1, 2, 3) and len(lines) == 1 and lines[0].startswith("videoml: "), f"{case}\n{stderr}"


def _report(folder):
    true = ["a", "a", "b", "c", "c", "c"]
    return ClassReport.from_labels(true, ["a", "b", "b", "c", "a", "c"], ["a", "b", "c"]).write(folder)


def _mutated_matrix(text: str, rng: random.Random) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["cell", "drop row", "drop column", "add column", "duplicate name", "truncate"])
        r = rng.randrange(len(rows)) if rows else 0
        if kind == "cell" and rows and rows[r]:
            rows[r][rng.randrange(len(rows[r]))] = str(rng.choice(WRONG + [-5, 10**30, 1.5, "nan", " 3"]))
        elif kind == "drop row" and rows:
            del rows[r]
        elif kind == "drop column":
            for row in rows:
                row[rng.randrange(len(row)):][:1] = []
        elif kind == "add column" and rows:
            rows[r].append(str(rng.randint(-3, 3)))
        elif kind == "duplicate name" and len(rows) > 2:
            rows[0][1:3] = [rows[0][1]] * 2
        elif kind == "truncate":
            rows = rows[:r]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@pytest.mark.slow
def test_report_of_a_mutated_confusion_matrix_prints_or_says_what_is_wrong(tmp_path):
    rng = random.Random(SEED)
    for case in range(N):
        folder = _report(tmp_path / f"r{case}")
        matrix = folder / "confusion.csv"
        if case % 7 == 6:
            matrix.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        else:
            matrix.write_text(_mutated_matrix(matrix.read_text(), rng), errors="surrogateescape")
        status, stderr = _run(["report", str(folder), "--plots", str(case % 2 == 0).lower()])
        _one_line_or_nothing(status, stderr, f"case {case}: {matrix.read_bytes()[:400]!r}")


def _base_configs(tmp_path) -> dict[str, dict]:
    """Each command's full configuration, as --print_config writes it, for inputs that do not exist (a case that
    parses ends in an error about them, not in a run)."""
    gone = str(tmp_path / "gone")
    argvs = {"infer": ["infer", f"{gone}.mp4", "-m", f"{gone}.ckpt"],
             "extract": ["extract", f"{gone}.mp4", "-m", f"{gone}.ckpt"],
             "report": ["report", gone], "data prepare": ["data", "prepare", gone, str(tmp_path / "dst")],
             "data check": ["data", "check", gone]}
    configs = {}
    for name, argv in argvs.items():
        out = io.StringIO()
        with redirect_stdout(out), pytest.raises(SystemExit):
            main([*argv, "--print_config"])
        configs[name] = yaml.safe_load(out.getvalue())
    return configs


def _mutated_config(config: dict, rng: random.Random) -> str:
    config = dict(config)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(config))
        kind = rng.choice(["wrong", "wrong", "drop", "unknown"])
        if kind == "wrong":
            config[key] = rng.choice(WRONG)
        elif kind == "drop":
            config.pop(key)
        else:
            config[f"{key}_{rng.randint(0, 9)}"] = rng.choice(WRONG)
        if not config:
            break
    text = yaml.safe_dump(config, allow_unicode=True) if rng.random() < 0.9 else "a: &a [" + "*a, " * 50 + "]"
    if rng.random() < 0.2:  # what an editor or a transfer does to the text
        text = text[:rng.randrange(len(text) + 1)] + rng.choice(["\t", ":", "- [", "&x", "*y", "{", "'"])
    return text


@pytest.mark.slow
def test_a_mutated_config_file_is_read_or_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a case names as an output lands here
    rng = random.Random(SEED)
    for name, config in _base_configs(tmp_path).items():
        for case in range(N):
            path = tmp_path / f"{name.replace(' ', '_')}{case}.yaml"
            path.write_text(_mutated_config(config, rng), errors="surrogateescape")
            status, stderr = _run([*name.split(), "--config", str(path)])
            assert status != 0, f"{name} ran on {path.read_text()[:400]}"  # every input is missing
            _one_line_or_nothing(status, stderr, f"{name} --config {path.read_text()[:400]!r}")
