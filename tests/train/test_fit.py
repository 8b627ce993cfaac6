"""Training through the CLI, as users run it: `videoml fit|validate --config configs/synth_x3d_tiny.yaml ...`."""

import json

import pytest
import torch
import yaml
from helpers import fit_args, metrics, videoml


@pytest.mark.slow
def test_fit_writes_a_run_directory_resumes_and_validates(small_synth, tmp_path):
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a"))
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "a" / "logs" / "version_0"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["seed_everything"] == 0 and config["model"]["model"] == "x3d_tiny"
    assert (run / "classes.txt").read_text().split() == list(small_synth.classes)
    env = json.loads((run / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and any(p.startswith("lightning==") for p in env["packages"])
    m = metrics(run)
    assert m["train/clips"] == [(0, 8.0)] and m["val/videos"] == [(0, 8.0)]
    assert 0 <= m["val/top1"][0][1] <= 1 and m["throughput/clips_per_s"][0][1] > 0
    assert 0 <= m["throughput/data_wait"][0][1] <= 1
    assert (run / "checkpoints" / "last.ckpt").is_file()

    # resume to epoch 2: the run continues the same schedule as a straight 2-epoch run
    resumed = videoml("fit", *fit_args(small_synth, tmp_path / "a", "--trainer.max_epochs", "2", "--ckpt_path",
                                       str(run / "checkpoints" / "last.ckpt")))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = videoml("fit", *fit_args(small_synth, tmp_path / "b", "--trainer.max_epochs", "2"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    a = torch.load(tmp_path / "a" / "logs" / "version_1" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "b" / "logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4 and a["epoch"] == b["epoch"] == 1
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert metrics(tmp_path / "a" / "logs" / "version_1")["train/clips"] == [(1, 8.0)]

    # validate the checkpoint: every validation video counted once
    validated = videoml("validate", *fit_args(small_synth, tmp_path / "c", "--ckpt_path",
                                              str(run / "checkpoints" / "last.ckpt")))
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert metrics(tmp_path / "c" / "logs" / "version_0")["val/videos"] == [(0, 8.0)]


@pytest.mark.slow
def test_unreadable_training_videos_are_skipped_counted_and_capped(small_synth, tmp_path):
    listing = tmp_path / "train.csv"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"garbage")
    lines = small_synth.split_file("train").read_text().splitlines()
    listing.write_text("".join(f"{small_synth.root / line}\n" for line in lines) + f"{broken} 0\n")
    (tmp_path / "classes.txt").write_text(small_synth.classes_file.read_text())

    ok = videoml("fit", *fit_args(small_synth, tmp_path / "a", "--model.max_bad_fraction", "0.2", train=listing))
    assert ok.returncode == 0, ok.stderr[-3000:]
    m = metrics(tmp_path / "a" / "logs" / "version_0")
    assert m["train/bad_videos"] == [(0, 1.0)] and m["train/clips"] == [(0, 8.0)]
    assert f"1 training video(s) could not be decoded and were skipped: {broken}" in ok.stderr

    capped = videoml("fit", *fit_args(small_synth, tmp_path / "b", train=listing))
    assert capped.returncode == 1
    assert f"videoml: error: 1 of 9 training videos (11.1%) could not be decoded, over max_bad_fraction=0.01: {broken}" \
        in capped.stderr and "Traceback" not in capped.stderr


def test_print_config_shows_linked_settings():
    result = videoml("fit", "--config", "configs/synth_x3d_tiny.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["model"]["model"] == "x3d_tiny" and config["trainer"]["use_distributed_sampler"] is False


def test_a_bad_config_value_is_one_clear_error(tmp_path):
    args = ("fit", "--config", "configs/synth_x3d_tiny.yaml", "--data.train.path", str(tmp_path / "none.csv"))
    result = videoml(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"videoml: error: {tmp_path / 'none.csv'}: no such file"
    debug = videoml("--debug", *args)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
