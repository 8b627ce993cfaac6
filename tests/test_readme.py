"""The README's Python API examples run as written, on a small synthetic data set laid out as `make demo` lays out
its own."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _python_api_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_python_api_examples_run(small_synth, tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("synth", "synth-prepared"):  # the demo's original and prepared sets: here the same small set
        (tmp_path / "data" / name).symlink_to(small_synth.root)
    (tmp_path / "configs").symlink_to(README.parent / "configs")
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    result = subprocess.run([sys.executable, "-c", _python_api_example()], cwd=tmp_path, capture_output=True,
                            text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()  # the examples' prints, among Lightning's tables
    assert lines[0] == str(["x3d_xs", "x3d_s", "x3d_m", "x3d_l", "x3d_tiny", "x3d_tiny_frame"])
    run_dir, best, top1 = next(line for line in lines if re.fullmatch(r"\S+ \S+\.ckpt [0-9.]+", line)).split()
    assert Path(tmp_path / best).is_file() and (tmp_path / run_dir / "metrics.csv").is_file()
    assert 0.0 <= float(top1) <= 1.0
    clips = next(line for line in lines if line.startswith("clips "))
    assert clips.startswith("clips (4, 3, 4, 64, 64) ['move_left', 'move_right']"), clips
    label, score = lines[-2].split()[:2]
    assert label in (small_synth.root / "classes.txt").read_text().split() and 0 < float(score) <= 1
    frames, shape = lines[-1].split(" ", 1)
    assert int(frames) == 24 and shape == "torch.Size([2, 96, 96, 3])"
