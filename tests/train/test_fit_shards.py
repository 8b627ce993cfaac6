"""`videoml fit` / `validate` on shards: two DDP processes reading from a loopback S3 server, every (video, repeat)
once per epoch and validation scored as by one process; damaged shards counted against max_bad_fraction."""

import json

import pytest
from helpers import damaged_shards, fit_args, metrics, videoml

from videoml.data.datasets import load_source

pytestmark = pytest.mark.slow


def _from_shards(url: str, *splits) -> list[str]:
    args = []
    for split in ("train", "val", "test"):
        source = {"kind": "shards", "url": str(url), "split": split} if split in splits else None
        args += [f"--data.{split}", json.dumps(source)]
    return args


def test_two_processes_read_s3_shards_every_clip_once_and_validate_as_one_process(small_synth, s3_shards, tmp_path):
    data = (*_from_shards(s3_shards, "train", "val"), "--data.views", "3")
    ddp = ("--trainer.strategy", "ddp", "--trainer.devices", "2", "--data.clips_per_video", "2",
           "--data.batch_size", "4")
    fit = videoml("fit", *fit_args(small_synth, tmp_path / "fit", *data, *ddp))
    assert fit.returncode == 0, fit.stderr[-3000:]
    m = metrics(tmp_path / "fit" / "logs" / "version_0")
    train, val = (len(load_source("shards", url=s3_shards, split=split)) for split in ("train", "val"))
    assert m["train/clips"] == [(0, 2.0 * train)]  # every (video, repeat) once over the two ranks
    assert m["val/videos"] == [(0, float(val))] and m["train/bad_videos"] == [(0, 0.0)]

    checkpoint = tmp_path / "fit" / "logs" / "version_0" / "checkpoints" / "last.ckpt"
    one = videoml("validate", *fit_args(small_synth, tmp_path / "one", *data, "--ckpt_path", str(checkpoint)))
    assert one.returncode == 0, one.stderr[-3000:]
    alone = metrics(tmp_path / "one" / "logs" / "version_0")
    for key in ("val/videos", "val/top1", "val/top5"):  # the two processes' validation at the end of fit
        assert alone[key][0][1] == m[key][-1][1], key
    secret = "videoml-test-secret"  # credentials come from the environment and are written nowhere
    assert all(secret not in p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()) and \
        secret not in fit.stderr + fit.stdout


def test_damaged_shards_count_against_max_bad_fraction_by_shard_and_key(small_synth, small_shards, tmp_path):
    url, whole, bad_key = damaged_shards(small_shards, tmp_path / "damaged", ("sample", "missing"))
    data = _from_shards(url, "train")
    n = len(load_source("shards", url=str(url)))
    ok = videoml("fit", *fit_args(small_synth, tmp_path / "a", *data, "--model.max_bad_fraction", "0.5"))
    assert ok.returncode == 0, ok.stderr[-3000:]
    bad = 1 + sum(map(len, whole.values()))
    assert metrics(tmp_path / "a" / "logs" / "version_0")["train/bad_videos"] == [(0, float(bad))]
    missing = next(iter(whole))
    assert ok.stderr.count(f"skipping damaged shard: {url}/{missing}: No such file or directory") == 1

    capped = videoml("fit", *fit_args(small_synth, tmp_path / "b", *data))
    assert capped.returncode == 1 and "Traceback" not in capped.stderr
    error = capped.stderr.strip().splitlines()[-1]
    assert error.startswith(f"videoml: error: {bad} of {n} training videos") and "max_bad_fraction=0.01" in error
    assert f"{url}/{missing}:{whole[missing][0]}" in error
