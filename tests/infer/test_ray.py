"""`--engine ray` on a local Ray instance (2 CPUs): the local engine's records, and nothing lost or doubled when a Ray
worker or the driver is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from videoml.infer.features import load_features
from videoml.infer.options import ExtractConfig
from videoml.infer.results import read_records
from videoml.infer.options import InferConfig
from videoml.infer.run import infer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """A Ray instance for the module; this process is connected to it, command lines connect by its address."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(small_synth, tmp_path_factory) -> list[str]:
    """The small set's videos, each under 8 names (hard links: distinct videos to a run), and a file that is no
    video: a run long enough to be interrupted."""
    folder = tmp_path_factory.mktemp("many")
    originals = sorted((small_synth.root / "videos").rglob("*.mp4"))
    for copy in range(8):
        for i, video in enumerate(originals):
            os.link(video, folder / f"{copy}_{i}.mp4")
    (folder / "garbage.mp4").write_bytes(b"not a video at all")
    return sorted(str(p) for p in folder.iterdir())


def _local(checkpoint, videos, out) -> dict:
    infer(InferConfig(model=str(checkpoint), inputs=videos, out=str(out), num_workers=1, progress=False))
    return {r["path"]: r for r in read_records(out)}


def _same_records(got: list[dict], expected: dict) -> None:
    assert sorted(r["path"] for r in got) == sorted(expected)  # every input exactly once
    for record in got:
        reference = expected[record["path"]]
        assert (record["status"], record["error"], record["clips"]) == \
            (reference["status"], reference["error"], reference["clips"])
        assert [t["label"] for t in record["top_k"]] == [t["label"] for t in reference["top_k"]]
        assert np.allclose([t["score"] for t in record["top_k"]], [t["score"] for t in reference["top_k"]],
                           atol=1e-5)


def test_the_ray_engine_records_what_the_local_engine_does(cluster, small_synth, videos, checkpoint, tmp_path):
    few = videos[:6] + videos[-1:]  # the garbage file among them
    expected = _local(checkpoint, few, tmp_path / "local.jsonl")
    summary = infer(InferConfig(model=str(checkpoint), inputs=few, out=str(tmp_path / "ray.jsonl"),
                                engine="ray", progress=False))
    got = read_records(tmp_path / "ray.jsonl")
    assert [r["path"] for r in got] == few  # input order
    _same_records(got, expected)
    assert (summary.done, summary.failed) == (6, 1) and got[-1]["status"] == "error"

    features = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"features_{engine}"
        infer(ExtractConfig(model=str(checkpoint), inputs=few[:3], out=str(out), engine=engine, progress=False))
        features[engine] = load_features(out)
    assert features["ray"].paths == features["local"].paths
    assert np.allclose(features["ray"].videos, features["local"].videos, rtol=1e-5, atol=1e-6)


def _ray_workers() -> list[int]:
    """The model actors' processes (Ray names them by the stage: ``ray::MapWorker(...)``)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::MapWorker"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _start(cluster, videos, checkpoint, out, *extra) -> subprocess.Popen:
    args = [sys.executable, "-m", "videoml", "infer", *videos, "-m", str(checkpoint), "-o", str(out),
            "--engine", "ray", "--ray-address", cluster, *extra]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_records(run, out, count: int) -> None:
    deadline = time.monotonic() + 120
    while not (out.exists() and len(read_records(out)) >= count) and time.monotonic() < deadline:
        assert run.poll() is None, run.stderr.read()[-3000:]
        time.sleep(0.02)
    assert run.poll() is None, "the run ended before it could be interrupted"


def test_a_killed_ray_worker_loses_and_doubles_nothing(cluster, videos, checkpoint, tmp_path):
    out = tmp_path / "out.jsonl"
    run = _start(cluster, videos, checkpoint, out)
    _wait_for_records(run, out, 2)
    killed = _ray_workers()
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    assert len(read_records(out)) < len(videos)  # killed mid-run
    assert run.wait(timeout=300) == 3, run.stderr.read()[-3000:]  # (3: the garbage file failed, as it should)
    _same_records(read_records(out), _local(checkpoint, videos, tmp_path / "local.jsonl"))


def test_a_killed_driver_resumes_to_every_video_exactly_once(cluster, videos, checkpoint, tmp_path):
    out = tmp_path / "out.jsonl"
    run = _start(cluster, videos, checkpoint, out)
    _wait_for_records(run, out, 2)
    run.kill()
    run.wait()
    first = len(read_records(out))
    assert 0 < first < len(videos)
    resumed = _start(cluster, videos, checkpoint, out, "--resume")
    printed = resumed.communicate(timeout=300)[1]
    assert resumed.returncode == 3, printed[-3000:]
    assert f"{first} skipped (already in the output)" in printed
    assert "core_worker" not in printed and "(raylet)" not in printed, printed  # Ray's notices are not the run's
    _same_records(read_records(out), _local(checkpoint, videos, tmp_path / "local.jsonl"))
