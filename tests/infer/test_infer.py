"""`videoml infer` as users run it: many videos, a checkpoint or an exported model, records on disk."""

import csv
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from helpers import decode_all, videoml, write_audio_only

from videoml.data.clips import SampleKey
from videoml.data.datamodule import VideoDataModule
from videoml.data.synth import SynthConfig, generate
from videoml.data.transforms import normalize
from videoml.infer.run import EXIT_SOME_FAILED, aggregate
from videoml.models.weights import load_trained
from videoml.models.registry import model_input


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def split_videos(dataset):
    return sorted(str(dataset.root / line.split()[0]) for line in dataset.split_file("test").read_text().splitlines())


def reference_scores(checkpoint, dataset):
    """path -> mean softmax over the recipe's views, computed through the training data path (VideoDataModule)."""
    model, card = load_trained(checkpoint)
    data = VideoDataModule(test={"kind": "labeled_paths", "path": str(dataset.split_file("test"))},
                           spec=card.input, views=card.views, crops=card.crops, num_workers=0)
    clips = data.clips.dataset("test")
    scores = {}
    with torch.inference_mode():
        for i in range(len(clips)):
            sample = clips[SampleKey(i, 0)]
            video = normalize(sample.video, card.input.mean, card.input.std)
            path = str(clips.videos.items[sample.video_index][0])
            scores.setdefault(path, []).append(model(video).softmax(-1).mean(0))
    return {p: torch.stack(s).mean(0) for p, s in scores.items()}


@pytest.mark.slow
def test_infer_scores_every_video_as_evaluation_does(small_synth, checkpoint, tmp_path):
    out, table = tmp_path / "out.jsonl", tmp_path / "out.csv"
    videos = split_videos(small_synth)
    result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(out), "--csv", str(table),
                     "--num-workers", "1", "--batch-size", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    got = records(out)
    assert [r["path"] for r in got] == videos  # input order, each once
    reference = reference_scores(checkpoint, small_synth)
    classes = small_synth.classes
    for r in got:
        assert r["status"] == "ok" and r["error"] is None and r["clips"] == 2  # the recipe's 2 views x 1 crop
        assert len(r["top_k"]) == 5 and r["top_k"] == sorted(r["top_k"], key=lambda t: -t["score"])
        expected = reference[r["path"]]
        for top in r["top_k"]:
            assert top["score"] == pytest.approx(float(expected[classes.index(top["label"])]), abs=1e-4)
        assert r["seconds"] >= r["model_s"] > 0
    rows = list(csv.DictReader(table.open()))
    assert [row["path"] for row in rows] == videos
    assert all(row["label"] == r["top_k"][0]["label"] for row, r in zip(rows, got))
    assert f"{len(videos)} done, 0 failed, 0 skipped" in result.stderr


@pytest.mark.slow
def test_bad_inputs_are_recorded_and_the_run_goes_on(small_synth, checkpoint, tmp_path):
    good = split_videos(small_synth)[:2]
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all")
    listing = tmp_path / "videos.txt"
    listing.write_text("\n".join([good[0], str(garbage), good[1]]) + "\n")
    out = tmp_path / "out.jsonl"
    result = videoml("infer", str(listing), "-m", str(checkpoint), "-o", str(out), "--num-workers", "0",
                     "--per-clip", "--top-k", "3", "--parquet", str(tmp_path / "t.parquet"))
    assert result.returncode == EXIT_SOME_FAILED, result.stderr[-3000:]
    got = {r["path"]: r for r in records(out)}
    assert [got[p]["status"] for p in good] == ["ok", "ok"]
    for p in good:  # the recipe's 2 views, each with its own top-3
        views = got[p]["per_clip"]
        assert len(views) == 2 and views[0]["start"] == 0
        assert all(len(v["top_k"]) == 3 and v["end"] > v["start"] for v in views)
    assert got[str(garbage)]["status"] == "error" and str(garbage) in got[str(garbage)]["error"]
    assert "2 done, 1 failed" in result.stderr and "Traceback" not in result.stderr
    steady, wall = (float(x) for x in re.search(r" in ([0-9.]+) s: .*; ([0-9.]+) s in all;", result.stderr).groups())
    assert wall > steady  # the wait from the start of the process, and the rate once the model is loaded
    # the same records as Parquet tables: a row per video, a row per clip
    table = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [row["path"] for row in table] == [r["path"] for r in records(out)]
    for row in table:
        record = got[row["path"]]
        assert row["status"] == record["status"] and row["top_k"] == record["top_k"] and row["clips"] == record["clips"]
        assert (row["label"], row["score"]) == ((record["top_k"][0]["label"], record["top_k"][0]["score"])
                                                if record["top_k"] else (None, None))
    clips = pq.read_table(tmp_path / "t.clips.parquet").to_pylist()
    assert [(c["path"], c["clip"]) for c in clips] == [(p, k) for p in good for k in range(2)]
    assert [{k: c[k] for k in ("start", "end", "top_k")} for c in clips] == [v for p in good for v in got[p]["per_clip"]]

    missing = videoml("infer", str(tmp_path / "nowhere.mp4"), "-m", str(checkpoint), "-o", str(tmp_path / "x.jsonl"))
    assert missing.returncode == 1 and f"{tmp_path / 'nowhere.mp4'}: no such file" in missing.stderr
    no_model = videoml("infer", good[0], "-m", str(garbage), "-o", str(tmp_path / "y.jsonl"))
    assert no_model.returncode == 1 and "not a loadable checkpoint" in no_model.stderr


@pytest.mark.slow
def test_resume_after_a_kill_skips_what_is_done(small_synth, checkpoint, tmp_path):
    videos = split_videos(small_synth)
    out = tmp_path / "out.jsonl"
    args = ("infer", *videos, "-m", str(checkpoint), "-o", str(out), "--num-workers", "0")
    assert videoml(*args).returncode == 0
    full = records(out)
    # as a run killed while writing its third record leaves it
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:15])

    refused = videoml(*args)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = videoml(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{len(videos) - 2} done, 0 failed, 2 skipped" in resumed.stderr
    again = records(out)
    assert [r["path"] for r in again] == videos and again[:2] == full[:2]
    assert [r["top_k"] for r in again] == [r["top_k"] for r in full]


@pytest.mark.slow
def test_dense_mode_gives_a_timeline_over_the_whole_video(checkpoint, tmp_path):
    data = generate(SynthConfig(classes=("move_left", "grow"), videos_per_class=1, frames=96, fps="16",
                                splits=(1.0, 0.0, 0.0)), tmp_path / "long")
    video = str(data.root / data.split_file("train").read_text().split()[0])
    out = tmp_path / "out.jsonl"
    result = videoml("infer", video, "-m", str(checkpoint), "-o", str(out), "--dense", "0.5", "--num-workers", "0",
                     "--top-k", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    (r,) = records(out)
    # a clip spans (T - 1) x stride + 1 frames of the 96 (6 s at 16 fps); a start every 0.5 s = 8 frames, up to the
    # last start that fits, which is added so that the end is covered
    spec = model_input("x3d_tiny")
    span = (spec.frames - 1) * spec.stride + 1
    last = 96 - span
    starts = list(range(0, last + 1, 8)) + ([last] if last % 8 else [])
    timeline = r["timeline"]
    assert [s["start"] for s in timeline] == [f / 16 for f in starts]
    assert [s["end"] for s in timeline] == [(f + span) / 16 for f in starts]
    assert r["clips"] == len(starts) and all(len(s["top_k"]) == 2 for s in timeline) and len(r["top_k"]) == 2


@pytest.mark.slow
def test_a_timeline_of_a_variable_frame_rate_video_has_the_frames_own_times(checkpoint, tmp_path):
    data = generate(SynthConfig(classes=("move_left", "grow"), videos_per_class=1, frames=64, fps="16", vfr=True,
                                start_time=0.5, splits=(1.0, 0.0, 0.0)), tmp_path / "vfr")
    video = str(data.root / data.split_file("train").read_text().split()[0])
    _, times = decode_all(video)  # FFmpeg's decoder's time stamps, frame by frame
    times = np.asarray(times)
    assert len(set(np.round(np.diff(times), 6))) > 1
    out = tmp_path / "out.jsonl"
    result = videoml("infer", video, "-m", str(checkpoint), "-o", str(out), "--dense", "0.5", "--num-workers", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    (r,) = records(out)
    span = (model_input("x3d_tiny").frames - 1) * model_input("x3d_tiny").stride + 1
    shown = np.append(times[1:], times[-1] + (times[-1] - times[0]) / (len(times) - 1))  # when each frame ends
    for segment in r["timeline"]:
        first = int(np.argmin(np.abs(times - times[0] - segment["start"])))
        assert segment["start"] == pytest.approx(times[first] - times[0], abs=1e-4)
        assert segment["end"] == pytest.approx(shown[first + span - 1] - times[0], abs=1e-4)


def test_aggregation_rules():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    p = logits.softmax(-1)
    assert torch.allclose(aggregate(logits, "mean"), p.mean(0))
    assert torch.allclose(aggregate(logits, "max"), torch.stack([p[0, 0], p[1, 1]]))
    assert torch.allclose(aggregate(logits, "mean-logits"), torch.tensor([1.0, 0.5]).softmax(-1))


@pytest.mark.slow
def test_several_devices_merge_into_one_output(small_synth, checkpoint, tmp_path):
    videos = split_videos(small_synth)
    one, two = tmp_path / "out" / "one.jsonl", tmp_path / "out" / "two.jsonl"
    common = ("-m", str(checkpoint), "--num-workers", "0")
    assert videoml("infer", *videos, *common, "-o", str(one)).returncode == 0
    result = videoml("infer", *videos, *common, "-o", str(two), "--device", "cpu,cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["path"] for r in records(two)] == videos
    assert [r["top_k"] for r in records(two)] == [r["top_k"] for r in records(one)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.jsonl", "two.jsonl"]  # no parts left


@pytest.mark.slow
def test_profile_writes_a_trace_and_an_operator_table(small_synth, checkpoint, tmp_path):
    videos = split_videos(small_synth)
    folder = tmp_path / "profile"
    result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(tmp_path / "out.jsonl"),
                     "--batch-size", "1", "--num-workers", "0", "--profile", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    (trace,) = folder.glob("trace.*.json")
    assert json.loads(trace.read_text())["traceEvents"]
    assert "aten::" in (folder / "operators.txt").read_text() and "Self CPU" in result.stderr


@pytest.mark.slow
def test_infer_with_labels_writes_a_per_class_report_that_videoml_report_prints(small_synth, checkpoint, tmp_path):
    out = tmp_path / "out.jsonl"
    videos = split_videos(small_synth)
    listed = small_synth.split_file("test")
    result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(out), "--labels", str(listed),
                     "--num-workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "out.jsonl.report"
    assert f"labelled videos; per-class report in {folder}" in result.stderr
    truth = {str(small_synth.root / line.split()[0]): small_synth.classes[int(line.split()[1])]
             for line in listed.read_text().splitlines()}
    predicted = {r["path"]: r["top_k"][0]["label"] for r in records(out)}
    with (folder / "confusion.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][1:] == list(small_synth.classes)
    for row in rows[1:]:  # each cell counts the videos of that true class predicted as that class
        for name, count in zip(rows[0][1:], row[1:]):
            assert int(count) == sum(truth[p] == row[0] and predicted[p] == name for p in videos), (row[0], name)
    (folder / "confusion.png").unlink()
    shown = videoml("report", str(folder))
    assert shown.returncode == 0, shown.stderr
    correct = sum(truth[p] == predicted[p] for p in videos)
    assert f"top-1 {correct / len(videos):.4f} over {len(videos)} videos" in shown.stdout
    assert all(f"| {name} |" in shown.stdout for name in small_synth.classes)
    assert (folder / "confusion.png").stat().st_size > 5000  # drawn again from the matrix
    missing = videoml("report", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and "holds no per-class report" in missing.stderr


@pytest.mark.slow
def test_parts_split_the_inputs_deterministically_into_disjoint_parts(small_synth, checkpoint, tmp_path):
    videos = split_videos(small_synth)
    parts = []
    for index in range(3):
        out = tmp_path / f"part{index}.jsonl"
        spelling = "--shard" if index == 2 else "--part"  # (the old name still works, with a line saying so)
        result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(out), spelling, f"{index}/3",
                         "--num-workers", "0", "--views", "1")
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("--shard is now --part" in result.stderr) == (spelling == "--shard")
        parts.append([r["path"] for r in records(out)])
    assert parts == [videos[i::3] for i in range(3)]  # every 3rd video of the input list, from the i-th
    for bad in ("3/3", "one/3"):
        result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(tmp_path / "x.jsonl"), "--part", bad)
        assert result.returncode == 2 and "--part must be I/N with 0 <= I < N" in result.stderr, (bad, result.stderr)


def _not_videos(folder):
    """A text file, subtitles, audio and a still image: FFmpeg opens each of them, none is a video."""
    import numpy as np
    from PIL import Image

    files = {"README.nfo": "a text file (FFmpeg's tty demuxer draws text as pictures), not a video",
             "subtitles.srt": "no video stream (has: subtitle)", "audio.wav": "no video stream (has: audio)",
             "still.png": "an image (png), not a video"}
    (folder / "README.nfo").write_text("Notes on the data set.\n" * 40)  # (infer reads a .txt as a list of videos)
    (folder / "subtitles.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    write_audio_only(folder / "audio.wav")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "still.png")
    return {str(folder / name): reason for name, reason in files.items()}


@pytest.mark.slow
def test_files_that_are_not_videos_get_a_one_line_refusal_each(small_synth, checkpoint, tmp_path):
    refused = _not_videos(tmp_path)
    good = split_videos(small_synth)[0]
    out = tmp_path / "out.jsonl"
    result = videoml("infer", good, *refused, "-m", str(checkpoint), "-o", str(out), "--num-workers", "1")
    assert result.returncode == EXIT_SOME_FAILED, result.stderr[-3000:]
    got = {r["path"]: r for r in records(out)}
    assert got[good]["status"] == "ok"
    for path, reason in refused.items():
        assert got[path]["status"] == "error" and got[path]["error"] == f"{path}: {reason}"
    assert "1 done, 4 failed" in result.stderr and "Traceback" not in result.stderr

    notes = tmp_path / "notes.txt"  # a .txt given to infer is a list of videos: a line that is none stops the run
    notes.write_text("Notes on the data set.\n")
    listed = videoml("infer", str(notes), "-m", str(checkpoint), "-o", str(tmp_path / "notes.jsonl"))
    assert listed.returncode == 2 and listed.stderr.strip() == (
        f"videoml: error: {notes}, line 1: Notes on the data set.: no such file (a .txt or .lst input is a list of "
        "videos, one a line)")

    check = videoml("data", "check", *refused)
    assert check.returncode == 1 and "4 files: 0 ok, 0 warn, 4 bad" in check.stderr
    assert [line.split()[0] for line in check.stdout.splitlines()[1:]] == ["BAD"] * 4
    assert all(f"{path}: {reason}" in check.stdout for path, reason in refused.items())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
def test_every_backend_reads_the_synthetic_videos_as_pyav_does(small_synth, checkpoint, tmp_path, backend):
    from videoml.data.decoding import INSTALL, backend_available

    videos = split_videos(small_synth)
    runs = {}
    for name in ("pyav", backend):
        out = tmp_path / f"{name}.jsonl"
        result = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(out), "--backend", name)
        if not backend_available(name):  # stops before it starts, saying what to install
            assert result.returncode == 2 and INSTALL[name] in result.stderr and not out.exists()
            return
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = {r["path"]: r["top_k"] for r in records(out)}
    assert runs[backend].keys() == runs["pyav"].keys()
    for path, top in runs[backend].items():  # the same frames, scaled and converted a little otherwise: close scores
        theirs = {t["label"]: t["score"] for t in runs["pyav"][path]}
        assert all(t["score"] == pytest.approx(theirs[t["label"]], abs=0.02) for t in top if t["label"] in theirs)


@pytest.mark.slow
def test_a_printed_config_runs_the_same_inference(small_synth, checkpoint, tmp_path):
    videos, out = split_videos(small_synth)[:2], tmp_path / "out.jsonl"
    printed = videoml("infer", *videos, "-m", str(checkpoint), "-o", str(out), "--print_config")
    assert printed.returncode == 0 and not out.exists()
    (tmp_path / "infer.yaml").write_text(printed.stdout)
    result = videoml("infer", "--config", str(tmp_path / "infer.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["path"] for r in records(out)] == videos
