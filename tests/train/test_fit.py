"""Training through the CLI, as users run it: `videoml fit|validate --config configs/synth_x3d_tiny.yaml ...`."""

import csv
import importlib.util
import json

import pytest
import torch
import yaml
from PIL import Image
from helpers import fit_args, metrics, train_list_with_a_broken_video, videoml

from videoml.evaluation import ClassReport


@pytest.mark.slow
def test_fit_writes_a_run_directory_and_validates(small_synth, tmp_path):
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a"))
    assert result.returncode == 0, result.stderr[-3000:]
    # nothing a user cannot act on: no library's warnings, no advertisement
    assert "Warning" not in result.stderr and "deprecated" not in result.stderr and "Tip" not in result.stderr
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
    with Image.open(run / "curves.png") as curves:  # the learning curves, a picture
        assert curves.format == "PNG" and curves.size == (1000, 360)
    assert f"learning curves (loss, top-1 per epoch): {run / 'curves.png'}" in videoml("report", str(run)).stdout
    for stage, videos in (("val", 8), ("test", 8)):  # the per-class report of each evaluation
        report = ClassReport.read(run / "report" / stage)
        assert report.classes == small_synth.classes and report.matrix.sum() == videos
        assert report.top1 == pytest.approx(m[f"{stage}/top1"][-1][1])
        per_class = list(csv.DictReader((run / "report" / stage / "per_class.csv").open()))
        assert [int(r["videos"]) for r in per_class] == report.matrix.sum(1).tolist()
        assert (run / "report" / stage / "confusion.png").stat().st_size > 5000

    # validate the checkpoint: every validation video counted once
    validated = videoml("validate", *fit_args(small_synth, tmp_path / "c", "--ckpt_path",
                                              str(run / "checkpoints" / "last.ckpt")))
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert metrics(tmp_path / "c" / "logs" / "version_0")["val/videos"] == [(0, 8.0)]


@pytest.mark.slow
def test_fit_without_validation_data_trains_and_validate_says_what_is_missing(small_synth, tmp_path):
    no_eval = ("--data.val", "null", "--data.test", "null", "--trainer.callbacks", "[]")
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a", *no_eval))
    assert result.returncode == 0, result.stderr[-3000:]
    m = metrics(tmp_path / "a" / "logs" / "version_0")
    assert m["train/clips"] == [(0, 8.0)] and "val/top1" not in m

    validated = videoml("validate", *fit_args(small_synth, tmp_path / "b", *no_eval))
    assert validated.returncode == 1 and "Traceback" not in validated.stderr
    assert validated.stderr.strip().splitlines()[-1] == "videoml: error: no val data configured (data.val)"


@pytest.mark.slow
def test_csv_and_tensorboard_loggers_together_as_the_recipes_configure_them(small_synth, tmp_path):
    recipe = yaml.safe_load(open("configs/x3d_s_kinetics400.yaml"))["trainer"]["logger"]
    for logger in recipe:
        logger["init_args"]["save_dir"] = str(tmp_path)
    result = videoml("fit", *fit_args(small_synth, tmp_path, "--data.test", "null",
                                      "--trainer.logger", json.dumps(recipe)))
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "version_0"  # the run directory is the first logger's
    assert {"config.yaml", "classes.txt", "environment.json", "metrics.csv"} <= {p.name for p in run.iterdir()}
    assert "val/top1" in metrics(run)
    (events,) = (tmp_path / "tensorboard" / "version_0").glob("events.out.tfevents.*")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert {"val/top1", "train/top1"} <= set(logged)  # TensorBoard reads what was written without TensorFlow
    # which the run did not load: no TensorFlow start-up lines
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_resume_continues_exactly_where_the_run_stopped(small_synth, tmp_path):
    # keep every epoch's checkpoint, as a run interrupted after its first epoch would have left it
    config = yaml.safe_load(open("configs/synth_x3d_tiny.yaml"))
    every_epoch = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                   "init_args": {"filename": "epoch{epoch}", "save_top_k": -1, "save_on_train_epoch_end": True,
                                 "auto_insert_metric_name": False, "mode": "max"}}  # mode: a state key of its own
    keep = tmp_path / "keep.yaml"
    keep.write_text(yaml.safe_dump({"trainer": {"callbacks": config["trainer"]["callbacks"] + [every_epoch]}}))
    three = ("--trainer.max_epochs", "3", "--config", str(keep))
    straight = videoml("fit", *fit_args(small_synth, tmp_path / "a", *three))
    assert straight.returncode == 0, straight.stderr[-3000:]
    checkpoints = tmp_path / "a" / "logs" / "version_0" / "checkpoints"
    resumed = videoml("fit", *fit_args(small_synth, tmp_path / "b", *three, "--ckpt_path",
                                       str(checkpoints / "epoch0.ckpt")))
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a = torch.load(checkpoints / "last.ckpt", weights_only=False)
    b = torch.load(tmp_path / "b" / "logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"] == 6
    # the same data order, augmentation and LR schedule: bit-identical weights and optimizer state
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["lr_schedulers"] == b["lr_schedulers"]
    moments = [(x["exp_avg"], y["exp_avg"]) for x, y in zip(a["optimizer_states"][0]["state"].values(),
                                                           b["optimizer_states"][0]["state"].values())]
    assert moments and all(torch.equal(x, y) for x, y in moments)
    assert metrics(tmp_path / "b" / "logs" / "version_0")["train/clips"] == [(1, 8.0), (2, 8.0)]


@pytest.mark.slow
def test_fit_profile_traces_training_steps_into_the_run_directory(small_synth, tmp_path):
    result = videoml("fit", *fit_args(small_synth, tmp_path, "--data.batch_size", "1", "--data.test", "null",
                                      "--profile", "--trainer.profiler.init_args.skip_first", "0",
                                      "--trainer.profiler.init_args.active", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "logs" / "version_0"
    assert list(run.glob("fit-profile-*training_step*.pt.trace.json"))
    summary = (run / "fit-profile.txt").read_text()
    assert summary.startswith("FIT Profiler Report") and "Self CPU time total" in summary


@pytest.mark.slow
def test_unreadable_training_videos_are_skipped_counted_and_capped(small_synth, tmp_path):
    listing, broken = train_list_with_a_broken_video(small_synth, tmp_path)

    ok = videoml("fit", *fit_args(small_synth, tmp_path / "a", "--model.max_bad_fraction", "0.2", train=listing))
    assert ok.returncode == 0, ok.stderr[-3000:]
    m = metrics(tmp_path / "a" / "logs" / "version_0")
    assert m["train/bad_videos"] == [(0, 1.0)] and m["train/clips"] == [(0, 8.0)]
    assert f"1 training video(s) could not be decoded and were skipped: {broken}" in ok.stderr

    capped = videoml("fit", *fit_args(small_synth, tmp_path / "b", train=listing))
    assert capped.returncode == 1
    assert ("videoml: error: 1 of 9 training videos (11.1%) could not be decoded (1) or are missing or empty (0), over "
            f"max_bad_fraction=0.01: {broken}") in capped.stderr and "Traceback" not in capped.stderr


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


@pytest.mark.parametrize("logger, package", [("WandbLogger", "wandb"), ("MLFlowLogger", "mlflow")])
def test_a_logger_whose_package_is_not_installed_is_one_line_naming_the_extra(small_synth, tmp_path, logger, package):
    if importlib.util.find_spec(package):
        pytest.skip(f"{package} is installed here")
    result = videoml("fit", *fit_args(small_synth, tmp_path), f"--trainer.logger+={logger}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (f"videoml: error: the configuration needs {package}, which is "
                                                      f"not installed here: pip install 'videoml[{package}]'")
