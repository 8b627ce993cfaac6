"""`videoml data prepare`: re-encoded training sets keep every frame in place, resume after a kill, list bad sources."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import videoml

from videoml.data.datasets import labeled_paths
from videoml.data.decoding import load_index, open_video
from videoml.data.prepare import PrepareConfig, kept_frames, prepare
from videoml.data.synth import SynthConfig, generate
from videoml.errors import VideomlError


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of the pictures' brightness at half resolution: what 4:2:0 chroma and coding noise leave alone, and what
    motion changes."""
    def coarse(x):
        gray = x.astype(np.float64) @ [0.299, 0.587, 0.114]
        h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
        return gray[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    mse = np.mean((coarse(a) - coarse(b)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def _assert_same_frames(source, prepared, keep=None):
    """Prepared frame j is source frame keep[j] (scaled alike): close to it, further from its neighbours."""
    with open_video(source) as src, open_video(prepared) as out:
        keep = np.arange(src.num_frames) if keep is None else keep
        assert out.num_frames == len(keep)
        np.testing.assert_allclose(out.timestamps - out.timestamps[0], src.timestamps[keep] - src.timestamps[keep[0]],
                                   atol=2e-5)
        mine = out.get_frames(np.arange(out.num_frames)).data.numpy()
        theirs = src.get_frames(np.arange(src.num_frames), size=(out.height, out.width)).data.numpy()
    for j, i in enumerate(keep):
        here = _psnr(mine[j], theirs[i])
        assert here > 30, (prepared, j, here)
        for k in (i - 1, i + 1):
            if 0 <= k < len(theirs) and _psnr(theirs[i], theirs[k]) < 50:  # (still pictures cannot tell)
                assert here > _psnr(mine[j], theirs[k]), (prepared, j, k)


def test_prepared_videos_keep_every_frame_in_place_and_decode_cheaply(small_synth, traits, tmp_path):
    listing = tmp_path / "train.csv"
    rotated, open_gop = traits["h264_10bit_rotated"], traits["h264_open_gop"]
    lines = [f"{small_synth.root / line}" for line in small_synth.split_file("train").read_text().splitlines()[:4]]
    listing.write_text("".join(f"{line}\n" for line in lines) + f"{rotated} 0\n{open_gop} 1\n")
    (tmp_path / "classes.txt").write_text(small_synth.classes_file.read_text())
    summary = prepare(listing, tmp_path / "out", PrepareConfig(short_side=64, gop=4, bframes=0, crf=8), num_workers=2)
    assert not summary.bad and summary.splits == {"train": 6}
    prepared = labeled_paths(tmp_path / "out" / "train.csv")
    assert [label for _, label in prepared.items] == [label for _, label in labeled_paths(listing).items]
    for (source, _), (output, _) in zip(labeled_paths(listing).items, prepared.items):
        index, original = load_index(output), load_index(source)
        assert min(index.width, index.height) == min(64, *original.display_size())  # scaled down, never up
        assert not index.reordered and index.rotation == 0 and index.numbering == "packets"
        assert list(index.keyframes) == list(range(0, index.num_frames, 4))
        _assert_same_frames(source, output)
    record = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[4])
    assert record["source"] == str(rotated) and record["frames"] == record["source_frames"] == 60
    assert (record["width"], record["height"]) == (48, 64)  # stored 64x48 turned 90 degrees: upright, kept


def test_max_fps_keeps_the_frame_on_screen_at_each_tick(tmp_path):
    stamps = np.arange(30) / 30
    assert list(kept_frames(stamps, 15)) == list(range(0, 30, 2))
    assert len(kept_frames(stamps, 24)) == 24 and list(kept_frames(stamps, 60)) == list(range(30))
    source = generate(SynthConfig(classes=("grow", "shrink"), videos_per_class=1, frames=30, fps="30", seed=2),
                      tmp_path / "synth", num_workers=1)
    prepare(source.root, tmp_path / "out", PrepareConfig(max_fps=10, crf=8))
    for line in source.split_file("train").read_text().splitlines():
        path = line.rsplit(None, 1)[0]
        _assert_same_frames(source.root / path, tmp_path / "out" / path, keep=np.arange(0, 30, 3))


def test_other_settings_over_a_prepared_set_are_refused(small_synth, tmp_path):
    prepare(small_synth.root, tmp_path / "out", PrepareConfig(short_side=48, gop=1), num_workers=2)
    with pytest.raises(VideomlError, match="other settings"):
        prepare(small_synth.root, tmp_path / "out", PrepareConfig(short_side=64))
    again = prepare(small_synth.root, tmp_path / "out", PrepareConfig(short_side=48, gop=1))  # a finished set
    assert len(again.records) == 24 and not again.bad
    assert all(load_index(tmp_path / "out" / r["path"]).keyframes.size == r["frames"] for r in again.records)


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_and_resumed_every_good_video_once_complete_and_the_bad_one_listed(small_synth, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_synth.root, data)
    (data / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    with open(data / "train.csv", "a") as f:
        f.write("videos/broken.mp4 0\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "videoml", "data", "prepare", str(data), str(out), "--num-workers", "1",
               "--short-side", "64", "--crf", "8"]
    run = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _wait_for(lambda: len(list(out.glob("videos/**/*.mp4"))) >= 3)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not json.loads((out / "prepare.json").read_text())["complete"]
    first = {p: p.stat().st_ino for p in out.glob("videos/**/*.mp4")}
    result = videoml(*command[3:])
    assert result.returncode == 3, result.stderr[-2000:]  # some sources bad, within --max-bad-fraction
    assert "broken.mp4" in (out / "bad.txt").read_text()
    assert all(p.stat().st_ino == inode for p, inode in first.items())  # finished videos were not redone
    assert not list(out.rglob("*.part"))
    listed = [line.rsplit(None, 1)[0] for split in ("train", "val", "test")
              for line in (out / f"{split}.csv").read_text().splitlines()]
    assert len(listed) == len(set(listed)) == 24 and sorted(out.glob("videos/**/*.mp4")) == sorted(out / p for p in listed)
    for path in listed:
        _assert_same_frames(data / path, out / path)


def test_too_many_bad_sources_fail_the_run_after_writing_what_it_could(small_synth, tmp_path):
    listing = tmp_path / "list.csv"
    good = small_synth.split_file("val").read_text().splitlines()[0]
    listing.write_text(f"{small_synth.root / good}\n{tmp_path / 'gone.mp4'} 0\n")
    (tmp_path / "garbage.mp4").write_bytes(b"garbage")
    listing.write_text(listing.read_text() + f"{tmp_path / 'garbage.mp4'} 1\n")
    result = videoml("data", "prepare", str(listing), str(tmp_path / "out"), "--num-workers", "1")
    assert result.returncode == 1 and result.stderr.count("\n") <= 4, result.stderr
    assert "2 of 3 videos could not be prepared" in result.stderr
    bad = (tmp_path / "out" / "bad.txt").read_text()
    assert "gone.mp4: listed but missing or empty on disk" in bad and "garbage.mp4" in bad
    assert len((tmp_path / "out" / "list.csv").read_text().splitlines()) == 1


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line")
def test_every_backend_reads_prepared_files_exactly_as_ffmpeg_decodes_them(traits, corpus, tmp_path):
    listing = tmp_path / "all.csv"
    listing.write_text("".join(f"{path} 0\n" for path in [*traits.values(), *corpus.values()]))
    prepare(listing, tmp_path / "out", PrepareConfig(short_side=40), num_workers=2)  # the defaults: B-frames too
    records = tmp_path / "verdicts.jsonl"
    result = videoml("data", "conformance", str(tmp_path / "out" / "videos"), "--jsonl", str(records))
    verdicts = [json.loads(line) for line in records.read_text().splitlines()]
    assert result.returncode == 0 and len(verdicts) >= 2 * (len(traits) + len(corpus)), result.stdout[-2000:]
    assert all(v["status"] == "exact" for v in verdicts if v["backend"] == "pyav")
    assert not [v for v in verdicts if v["status"] == "wrong"]


def _folder_per_class(small_synth, root):
    """A <class>/<video> folder of two classes, one video each (the layout a folder scan reads)."""
    for name in ("grow", "shrink"):
        (root / name).mkdir(parents=True)
        shutil.copy(next((small_synth.root / "videos" / name).iterdir()), root / name)
    return root


def test_a_destination_inside_a_source_folder_is_refused_before_anything_is_written(small_synth, tmp_path):
    source = _folder_per_class(small_synth, tmp_path / "s")
    inside = source / "prep"
    result = videoml("data", "prepare", str(source), str(inside), "--num-workers", "1")
    assert result.returncode == 2 and not inside.exists()
    assert result.stderr.strip() == (f"videoml: error: {inside}: inside the source folder {source}, where a later run "
                                     "would read its outputs as sources (a class of its own); choose a destination "
                                     "outside it")
    outside = prepare(source, tmp_path / "prep", PrepareConfig(short_side=32), num_workers=1)
    assert (tmp_path / "prep" / "classes.txt").read_text().split() == ["grow", "shrink"] and not outside.bad


def test_a_destination_another_run_is_writing_is_refused_naming_that_run(small_synth, tmp_path):
    from videoml.fileio import output_lock

    source = _folder_per_class(small_synth, tmp_path / "s")
    with output_lock([tmp_path / "prep"]):  # as a running prepare holds it
        result = videoml("data", "prepare", str(source), str(tmp_path / "prep"), "--num-workers", "1")
    assert result.returncode == 2 and not (tmp_path / "prep").exists()
    assert f"{tmp_path / 'prep'} is being written by pid {os.getpid()}" in result.stderr
    assert not (tmp_path / "prep.lock").exists()  # released with its holder


def test_names_a_split_file_or_the_file_system_find_hard_are_each_that_videos_own_outcome(small_synth, tmp_path):
    source = _folder_per_class(small_synth, tmp_path / "s")
    video = next((source / "grow").iterdir())
    undecodable, long_name = os.fsdecode(b"not-utf8-\xff\xfe.mp4"), "x" * 250 + ".mp4"  # 254 bytes: fits; + .part not
    for name in (undecodable, long_name, "line\nbreak.mp4"):
        shutil.copy(video, source / "shrink" / name)
    result = videoml("data", "prepare", str(source), str(tmp_path / "prep"), "--num-workers", "1",
                     "--max-bad-fraction", "0.5")
    assert result.returncode == 3, result.stderr[-3000:]  # some videos bad, recorded: the run went on
    prepared = labeled_paths(tmp_path / "prep" / "all.csv")  # the undecodable name listed as its own bytes
    assert len(prepared.items) == 4 and not prepared.missing
    assert all(len(os.fsencode(p.name)) + len(".part") <= 255 for p, _ in prepared.items)
    assert (tmp_path / "prep" / "bad.txt").read_text() == (
        f"{source / 'shrink'}/line\\nbreak.mp4: its name holds a line break, which a split file cannot list; "
        "rename it\n")
