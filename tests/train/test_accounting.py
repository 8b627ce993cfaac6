"""Training and evaluation count every listed video: missing, unreadable, not-a-video and too-short ones."""

import av
import numpy as np
import pytest
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
    missing = [f"{tmp_path / f'gone{i}.mp4'} 0" for i in range(30)]
    listing, n = _listing(small_synth, tmp_path, missing)
    result = videoml("fit", *fit_args(small_synth, tmp_path / "a", train=listing))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"30 of {n + 30} training videos" in result.stderr and "are missing (30)" in result.stderr
    assert "epoch" not in result.stderr.split("videoml: error")[-1]  # refused before training, not after an epoch

    listing, n = _listing(small_synth, tmp_path, [f"{tmp_path / 'still.mp4'} 0", f"{tmp_path / 'photo.mp4'} 1"])
    ok = videoml("fit", *fit_args(small_synth, tmp_path / "b", "--model.max_bad_fraction", "0.5", train=listing))
    assert ok.returncode == 0, ok.stderr[-3000:]
    m = metrics(tmp_path / "b" / "logs" / "version_0")
    assert m["train/bad_videos"] == [(0, 2.0)]  # the single picture and the fake PNG
    assert m["train/short_videos"] == [(0, float(n))]  # the small set's 24 frames are under x3d_tiny's 25-frame span
    assert "shorter than a clip and were padded" in ok.stderr


@pytest.mark.slow
def test_evaluation_fails_when_listed_videos_were_not_scored(small_synth, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    listing, n = _listing(small_synth, tmp_path, [f"{empty} 0", f"{tmp_path / 'gone.mp4'} 1"], split="val")
    args = fit_args(small_synth, tmp_path / "a", "--data.val.path", str(listing), "--data.test", "null")
    strict = videoml("fit", *args)
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert f"val: scored {n} of the {n + 2} videos {listing} lists (1 missing" in strict.stderr
    assert "1 unreadable" in strict.stderr and "min_eval_fraction=1" in strict.stderr
    lenient = videoml("fit", *args[:-2], "--model.min_eval_fraction", "0.5", "--data.test", "null")
    assert lenient.returncode == 0, lenient.stderr[-3000:]
    m = metrics(tmp_path / "a" / "logs" / "version_1")
    assert m["val/videos"] == [(0, float(n))] and m["val/videos_listed"] == [(0, float(n + 2))]


def test_bad_lightning_options_are_one_line(small_synth, tmp_path):
    result = videoml("fit", *fit_args(small_synth, tmp_path), "--data.batch_size", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "batch_size" in result.stderr, result.stderr


@pytest.mark.slow
def test_sigterm_stops_training_within_seconds_and_leaves_no_process(small_synth, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = fit_args(small_synth, tmp_path, "--trainer.max_epochs", "50", "--data.num_workers", "2")
    run = subprocess.Popen([sys.executable, "-m", "videoml", "fit", *args], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "logs" / "version_0" / "metrics.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the first epoch is done
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 143
    assert "videoml: terminated" in run.stderr.read().decode()
    time.sleep(2)
    with pytest.raises(ProcessLookupError):  # nothing left in the run's process group (loader workers included)
        os.killpg(run.pid, 0)
