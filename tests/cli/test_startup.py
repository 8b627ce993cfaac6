"""A command's --help and its option errors answer at once: they import what the command needs only when it runs
(torch, Lightning and TensorFlow take seconds to import)."""

import os
import statistics
import subprocess
import sys
import time

import pytest

HEAVY = ("torch", "lightning", "tensorflow", "keras", "ray", "transformers")
COMMANDS = [[], ["infer"], ["extract"], ["export"], ["report"], ["models"], ["data", "check"], ["data", "prepare"],
            ["data", "synth"], ["data", "conformance"], ["bench", "suite"], ["bench", "decode"], ["bench", "infer"],
            ["bench", "model"], ["bench", "compare"]]
PROBE = ("import runpy, sys; sys.argv = ['videoml', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('videoml', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)" % (HEAVY,))


def _heavy_modules(*args, env=None) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                            env=env)
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "videoml")
def test_help_loads_no_heavy_library(command):
    assert _heavy_modules(*command, "--help") == "[]"


@pytest.mark.parametrize("args", [["infer", "a.mp4", "--batch-size", "0"], ["data", "check", "--nosuch"],
                                  ["bench", "suite", "--config"]])
def test_a_bad_option_is_refused_before_anything_heavy_loads(args):
    assert _heavy_modules(*args) == "[]"


@pytest.mark.parametrize("command", [[], ["infer"]], ids=["videoml --help", "videoml infer --help"])
def test_help_answers_within_a_second(command):
    times = []
    for _ in range(5):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "videoml", *command, "--help"], capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
        assert result.returncode == 0
    assert statistics.median(times) < 1.0, times


@pytest.mark.parametrize("command", [["fit"], ["tf", "fit"]], ids=" ".join)
def test_lightning_help_is_built_once_then_answers_at_once(command, tmp_path):
    env = {**os.environ, "VIDEOML_CACHE_DIR": str(tmp_path)}
    run = [sys.executable, "-m", "videoml", *command, "--help"]
    built = subprocess.run(run, capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0 and built.stderr == "", built.stderr  # no TensorFlow start-up lines either
    assert "--trainer.max_epochs" in built.stdout and "--data.batch_size" in built.stdout
    assert ("--run-dir" in built.stdout) == (command[0] == "tf")
    times = []
    for _ in range(5):
        started = time.perf_counter()
        kept = subprocess.run(run, capture_output=True, text=True, timeout=60, env=env)
        times.append(time.perf_counter() - started)
        assert kept.returncode == 0 and kept.stdout == built.stdout
    assert statistics.median(times) < 1.0, times
    assert _heavy_modules(*command, "--help", env=env) == "[]"
