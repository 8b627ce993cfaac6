"""Two processes on CPU (gloo), launched by Lightning's DDP from the CLI, as on a cluster node."""

import pytest
from helpers import fit_args, metrics, videoml


@pytest.mark.slow
def test_ddp_counts_every_video_once_and_matches_one_process(small_synth, tmp_path):
    # 7 training videos over 2 ranks: shards of 4, one padded duplicate that must not count
    listing = tmp_path / "train.csv"
    lines = small_synth.split_file("train").read_text().splitlines()[:7]
    listing.write_text("".join(f"{small_synth.root / line}\n" for line in lines))
    (tmp_path / "classes.txt").write_text(small_synth.classes_file.read_text())
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
