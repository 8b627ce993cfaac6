"""Two processes on CPU (gloo): launched by Lightning's DDP from the CLI, as on a cluster node, and as two nodes of
one process each through scripts/torchrun_train.sh on 127.0.0.1, as on a cluster without SLURM."""

import os
import socket
import subprocess

import pytest
from helpers import fit_args, metrics, videoml


def _seven_training_videos(dataset, folder):
    """A training list of 7 of ``dataset``'s videos (with its classes) in ``folder``: over 2 ranks, shards of 4, one
    padded duplicate that must not count."""
    listing = folder / "train.csv"
    lines = dataset.split_file("train").read_text().splitlines()[:7]
    listing.write_text("".join(f"{dataset.root / line}\n" for line in lines))
    (folder / "classes.txt").write_text(dataset.classes_file.read_text())
    return listing


@pytest.mark.slow
def test_ddp_counts_every_video_once_and_matches_one_process(small_synth, tmp_path):
    listing = _seven_training_videos(small_synth, tmp_path)  # over 2 ranks: shards of 4, one padded duplicate
    ddp = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--data.views", "3", "--data.batch_size", "3")
    repeated = ("--data.clips_per_video", "2", "--data.batch_size", "4")  # 2 clips per decoded video

    fit = videoml("fit", *fit_args(small_synth, tmp_path / "fit", *ddp, *repeated, train=listing))
    assert fit.returncode == 0, fit.stderr[-3000:]
    m = metrics(tmp_path / "fit" / "logs" / "version_0")
    assert m["train/clips"] == [(0, 14.0)]  # every (video, repeat) once: the padded duplicate's two count nothing
    assert m["val/videos"] == [(0, 8.0)] and m["test/videos"][0][1] == 8.0  # 24 (video, view) pairs over 2 ranks
    assert m["throughput/clips_per_s"][0][1] > 0 and 0 <= m["throughput/data_wait"][0][1] <= 1
    assert "sync_dist" not in fit.stderr  # every epoch-level metric is reduced over ranks (or is the same on each)

    checkpoint = tmp_path / "fit" / "logs" / "version_0" / "checkpoints" / "last.ckpt"
    results = {}
    for name, extra in (("one", ("--data.views", "3")), ("two", ddp)):
        run = videoml("validate", *fit_args(small_synth, tmp_path / name, *extra, "--ckpt_path", str(checkpoint),
                                            train=listing))
        assert run.returncode == 0, run.stderr[-3000:]
        results[name] = metrics(tmp_path / name / "logs" / "version_0")
    for key in ("val/videos", "val/top1", "val/top5"):
        assert results["two"][key] == results["one"][key], key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_launched_by_torchrun_count_every_video_once_and_score_as_one_process(small_synth, tmp_path):
    listing = _seven_training_videos(small_synth, tmp_path)  # over 2 nodes: one padded duplicate
    args = fit_args(small_synth, tmp_path / "nodes", "--data.views", "3", train=listing)[2:]  # the script takes
    # the config (fit_args' first two words) as its first argument
    env = {**os.environ, "ACCELERATOR": "cpu", "GPUS": "1", "NNODES": "2", "MASTER_PORT": str(_free_port())}
    nodes = [subprocess.Popen(["scripts/torchrun_train.sh", "configs/synth_x3d_tiny.yaml", *args],
                              env={**env, "NODE_RANK": str(rank)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for rank in (0, 1)]
    errors = [node.communicate(timeout=600)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
    assert "MEMBER: 1/2" in errors[0] and "MEMBER: 2/2" in errors[1]  # one process group over the two nodes
    m = metrics(tmp_path / "nodes" / "logs" / "version_0")
    assert m["train/clips"] == [(0, 7.0)]  # every training video once over the two nodes
    assert m["val/videos"] == [(0, 8.0)] and m["test/videos"][0][1] == 8.0

    checkpoint = tmp_path / "nodes" / "logs" / "version_0" / "checkpoints" / "last.ckpt"
    one = videoml("validate", *fit_args(small_synth, tmp_path / "one", "--data.views", "3", "--ckpt_path",
                                        str(checkpoint), train=listing))
    assert one.returncode == 0, one.stderr[-3000:]
    alone = metrics(tmp_path / "one" / "logs" / "version_0")
    for key in ("val/videos", "val/top1", "val/top5"):  # the two nodes' validation at the end of fit, same weights
        assert alone[key][0][1] == m[key][-1][1], key


# A stand-in for SLURM's srun on one machine: SLURM_NNODES x SLURM_NTASKS_PER_NODE tasks, each with the variables
# srun gives it (the job's own ones come from the test, as sbatch would set them).
SRUN = """#!/usr/bin/env bash
pids=()
for ((node = 0; node < SLURM_NNODES; node++)); do
  for ((local = 0; local < SLURM_NTASKS_PER_NODE; local++)); do
    SLURM_NODEID=$node SLURM_LOCALID=$local SLURM_PROCID=$((node * SLURM_NTASKS_PER_NODE + local)) "$@" &
    pids+=($!)
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
"""


@pytest.mark.slow
def test_the_slurm_script_trains_on_two_nodes_under_a_stand_in_srun(small_synth, tmp_path):
    listing = _seven_training_videos(small_synth, tmp_path)
    stub = tmp_path / "bin" / "srun"
    stub.parent.mkdir()
    stub.write_text(SRUN)
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}", "ACCELERATOR": "cpu",
           "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "videoml", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "1",
           "SLURM_NTASKS": "2", "SLURM_CPUS_PER_TASK": "2", "SLURM_NODELIST": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    args = fit_args(small_synth, tmp_path / "slurm", "--data.views", "3", train=listing)[2:]
    run = subprocess.run(["bash", "scripts/slurm_train.sbatch", "configs/synth_x3d_tiny.yaml", *args], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "MEMBER: 1/2" in run.stderr and "MEMBER: 2/2" in run.stderr  # one process group of the two tasks
    assert not (tmp_path / "slurm" / "logs" / "version_1").exists()
    m = metrics(tmp_path / "slurm" / "logs" / "version_0")
    assert m["train/clips"] == [(0, 7.0)]  # two ranks from SLURM's variables, every training video once
    assert m["val/videos"] == [(0, 8.0)]
