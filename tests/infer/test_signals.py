"""Stopping `videoml infer` from outside: no process left behind, every input recorded exactly once on resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import videoml

from videoml.infer.results import read_records


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _records_so_far(out) -> int:
    parts = [out.with_name(f"{out.name}.part{k}") for k in range(2)]
    return sum(len(read_records(p)) for p in parts + [out] if p.exists())


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _a_shard(driver: int) -> int:
    """A shard process: a child of the driver's fork server that has children of its own (decoding workers)."""
    for server in _children(driver):
        for shard in _children(server):
            return shard
    raise AssertionError("no shard process found")


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL, "kill a shard", "Ctrl-C"])
def test_stopping_a_sharded_run_leaves_no_process_and_resume_completes_it(small_synth, checkpoint, tmp_path, how):
    videos = sorted(str(p) for p in (small_synth.root / "videos").rglob("*.mp4"))
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "videoml", "infer", *videos, "-m", str(checkpoint), "-o", str(out),
            "--device", "cpu,cpu", "--num-workers", "1", "--batch-size", "2"]
    run = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _records_so_far(out) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.poll() is None, "the run ended before it could be stopped"
    if how == "kill a shard":
        os.kill(_a_shard(run.pid), signal.SIGKILL)
    elif how == "Ctrl-C":  # a terminal signals every process of the foreground group
        os.killpg(run.pid, signal.SIGINT)
    else:
        run.send_signal(how)
    run.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _group_alive(run.pid) and time.monotonic() < deadline:  # shards and their decoding workers
        time.sleep(0.2)
    assert not _group_alive(run.pid), subprocess.run(["ps", "-o", "pid,ppid,stat,args", "-g", str(run.pid)],
                                                     capture_output=True, text=True).stdout
    stderr = run.stderr.read().decode()
    if how == signal.SIGTERM:
        assert run.returncode == 143 and stderr.strip() == "videoml: terminated", stderr[-3000:]
    if how == "Ctrl-C":
        assert run.returncode == 130 and stderr.strip() == "videoml: interrupted", stderr[-3000:]
    if how == "kill a shard":
        assert run.returncode == 1 and "a shard process died; run again with --resume" in stderr, stderr[-3000:]
        assert "Traceback" not in stderr and "leaked" not in stderr  # (the resource tracker cleans up quietly)
    resumed = videoml(*args[3:], "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    paths = [r["path"] for r in read_records(out)]
    assert sorted(paths) == videos and len(paths) == len(set(paths))  # every input exactly once


def test_a_loader_workers_failed_handover_to_a_killed_process_prints_no_traceback():
    """multiprocessing's resource sharer reports through sys.excepthook when the process it hands tensors to died;
    a loader worker keeps that quiet, and any other uncaught error still prints."""
    code = textwrap.dedent("""
        import os, sys, multiprocessing
        from videoml.processes import worker_init
        worker_init(0)
        serve = ("import sys\\ndef _serve():\\n    try:\\n        raise EOFError('the reader died')\\n"
                 "    except Exception:\\n        sys.excepthook(*sys.exc_info())\\n")  # as resource_sharer does
        scope = {}
        exec(compile(serve, os.path.join(os.path.dirname(multiprocessing.__file__), "resource_sharer.py"), "exec"),
             scope)
        scope["_serve"]()
        try:
            1 / 0
        except Exception:
            sys.excepthook(*sys.exc_info())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "EOFError" not in result.stderr
    assert result.stderr.count("Traceback") == 1 and "ZeroDivisionError" in result.stderr
