"""Training and evaluation count every listed video: missing, unreadable, not-a-video and too-short ones."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import fit_args, metrics, videoml

from videoml.data.decoding import open_video
from videoml.errors import VideoDecodeError


def _listing(dataset, folder, extra: list[str], split="train"):
    listing = folder / f"{split}.csv"
    lines = [f"{dataset.root / line}" for line in dataset.split_file(split).read_text().splitlines()]
    listing.write_text("".join(f"{line}\n" for line in lines + extra))
    (folder / "classes.txt").write_text(dataset.classes_file.read_text())
    return listing, len(lines)


def _one_frame_video(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = 64
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_an_image_is_not_a_video(tmp_path):
    from PIL import Image

    fake = tmp_path / "photo.mp4"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(fake, format="PNG")
    with pytest.raises(VideoDecodeError, match=f"{fake}: an image \\(png\\), not a video"):
        open_video(fake)


@pytest.mark.slow
def test_missing_and_not_a_video_files_count_against_max_bad_fraction(small_synth, tmp_path):
    _one_frame_video(tmp_path / "still.mp4")
    (tmp_path / "photo.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    for i in range(15):  # empty files: what a failed copy or download leaves; found by one stat each, as missing ones
        (tmp_path / f"empty{i}.mp4").write_bytes(b"")
    missing = [f"{tmp_path / f'gone{i}.mp4'} 0" for i in range(15)] + [f"{tmp_path / f'empty{i}.mp4'} 0"
                                                                        for i in range(15)]
    listing, n = _listing(small_synth, tmp_path, missing)
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a", train=listing))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"30 of {n + 30} training videos" in result.stderr and "are missing or empty (30)" in result.stderr
    assert "epoch" not in result.stderr.split("videoml: error")[-1]  # refused before training, not after an epoch

    listing, n = _listing(small_synth, tmp_path, [f"{tmp_path / 'still.mp4'} 0", f"{tmp_path / 'photo.mp4'} 1"])
    ok = videoml("fit", *fit_args(small_synth, tmp_path / "b", "--model.max_bad_fraction", "0.5", train=listing))
    assert ok.returncode == 0, ok.stderr[-3000:]
    m = metrics(tmp_path / "b" / "logs" / "version_0")
    assert m["train/bad_videos"] == [(0, 2.0)]  # the single picture and the fake PNG
    assert m["train/short_videos"] == [(0, float(n))]  # the small set's 24 frames are under x3d_tiny's 25-frame span
    assert "shorter than a clip and were padded" in ok.stderr


@pytest.mark.slow
def test_unreadable_videos_over_the_cap_fail_the_run_during_the_epoch(small_synth, tmp_path):
    broken = []
    for i in range(60):  # not empty (so not refused before training): each found out only by decoding it
        (tmp_path / f"broken{i}.mp4").write_bytes(b"not a video" * 10)
        broken.append(f"{tmp_path / f'broken{i}.mp4'} 0")
    listing, n = _listing(small_synth, tmp_path, broken)
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a", "--trainer.log_every_n_steps", "2",
                                      train=listing))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("videoml: error: epoch 0, so far: ") and f"of {n + 60} training videos" in last, last
    unreadable = int(last.split("could not be decoded (")[1].split(")")[0])
    assert 60 / (n + 60) > 0.01 and unreadable < 60  # refused after a few steps, before the epoch's end
    assert "could not be decoded and were skipped" not in result.stderr  # (the epoch-end report)


@pytest.mark.slow
def test_a_decoding_worker_that_dies_makes_its_video_unreadable_and_training_goes_on(small_synth, tmp_path,
                                                                                       monkeypatch):
    from torch.utils.data import get_worker_info

    from videoml.data.clips import ClipDataset
    from videoml.train.cli import run

    crash = tmp_path / "crash.mp4"  # a copy of a good video: only the crash makes it bad
    shutil.copyfile(small_synth.root / small_synth.split_file("train").read_text().split()[0], crash)
    listing, n = _listing(small_synth, tmp_path, [f"{crash} 0"])
    opened = ClipDataset._open

    def crashing(self, video_index):  # as a crash inside a decoder would, in a loader worker
        if get_worker_info() is not None and self.videos.items[video_index][0] == crash:
            os.kill(os.getpid(), signal.SIGSEGV)
        return opened(self, video_index)

    monkeypatch.setattr(ClipDataset, "_open", crashing)
    run(["fit", *fit_args(small_synth, tmp_path / "a", "--data.num_workers", "2", "--model.max_bad_fraction", "0.5",
                          "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0", "--data.test", "null",
                          train=listing)])
    m = metrics(tmp_path / "a" / "logs" / "version_0")
    assert m["train/bad_videos"] == [(0, 1.0), (1, 1.0)]  # the next epoch's fresh workers know it: no crash again
    assert m["train/clips"] == [(0, float(n)), (1, float(n))]  # every other video once an epoch


@pytest.mark.slow
def test_evaluation_fails_when_listed_videos_were_not_scored(small_synth, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    listing, n = _listing(small_synth, tmp_path, [f"{empty} 0", f"{tmp_path / 'gone.mp4'} 1"], split="val")
    args = fit_args(small_synth, tmp_path / "a", "--data.val.path", str(listing), "--data.test", "null")
    strict = videoml("fit", *args)
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert f"val: scored {n} of the {n + 2} videos {listing} lists (2 missing or empty" in strict.stderr
    assert "0 unreadable" in strict.stderr and "min_eval_fraction=1" in strict.stderr
    lenient = videoml("fit", *args[:-2], "--model.min_eval_fraction", "0.5", "--data.test", "null")
    assert lenient.returncode == 0, lenient.stderr[-3000:]
    m = metrics(tmp_path / "a" / "logs" / "version_1")
    assert m["val/videos"] == [(0, float(n))] and m["val/videos_listed"] == [(0, float(n + 2))]


def test_bad_lightning_options_are_one_line(small_synth, tmp_path):
    result = videoml("fit", *fit_args(small_synth, tmp_path), "--data.batch_size", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "batch_size" in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_whole_run_stops_it_naming_the_checkpoint_and_leaves_no_process(small_synth, tmp_path,
                                                                                        signum):
    """What timeout, scancel and a terminal's Ctrl-C do: every process of the run (loader workers too) gets it."""
    args = fit_args(small_synth, tmp_path, "--trainer.max_epochs", "50", "--data.num_workers", "2")
    run = subprocess.Popen([sys.executable, "-m", "videoml", "fit", *args], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints, deadline = tmp_path / "logs" / "version_0" / "checkpoints", time.monotonic() + 120
    while not (checkpoints / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the first epoch is done
    time.sleep(0.5)  # and its checkpoint written whole
    os.killpg(run.pid, signum)
    assert run.wait(timeout=30) == 128 + signum
    stderr = run.stderr.read().decode()
    assert "Traceback" not in stderr and "Received SIG" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert last.startswith(f"videoml: {word}; resume with --ckpt_path "), last
    checkpoint = Path(last.rsplit(" ", 1)[1])
    assert checkpoint.parent == tmp_path / "logs" / "version_0" / "checkpoints"
    assert torch.load(checkpoint, weights_only=False)["epoch"] >= 0
    time.sleep(2)
    with pytest.raises(ProcessLookupError):  # nothing left in the run's process group (loader workers included)
        os.killpg(run.pid, 0)
