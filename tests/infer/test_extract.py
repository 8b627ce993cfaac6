"""`videoml extract` as users run it: embeddings per clip and per video, checked against the model's own
computation on clips the training data path decodes."""

import json

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from helpers import videoml

from videoml.data.clips import SampleKey
from videoml.data.datamodule import VideoDataModule
from videoml.data.transforms import normalize
from videoml.infer.features import load_features
from videoml.infer.options import ExtractConfig
from videoml.infer.results import read_records
from videoml.infer.run import EXIT_SOME_FAILED, infer
from videoml.models.optimize import TOLERANCE
from videoml.models.weights import classifier_name, load_trained


def split_videos(dataset, split="test"):
    return [str(dataset.root / line.split()[0]) for line in dataset.split_file(split).read_text().splitlines()]


def reference_clips(checkpoint, dataset, views, crops):
    """path -> the normalised clips (views x crops) of the test split, made by the evaluation data path."""
    _, card = load_trained(checkpoint)
    data = VideoDataModule(test={"kind": "labeled_paths", "path": str(dataset.split_file("test"))},
                           spec=card.input, views=views, crops=crops, num_workers=0)
    clips = data.clips.dataset("test")
    out = {}
    for i in range(len(clips)):
        sample = clips[SampleKey(i, 0)]
        path = str(clips.videos.items[sample.video_index][0])
        out.setdefault(path, []).append(normalize(sample.video, card.input.mean, card.input.std))
    return {p: torch.cat(v) for p, v in out.items()}


@pytest.mark.slow
def test_head_features_are_what_the_classifier_scores(small_synth, checkpoint, tmp_path):
    out = tmp_path / "features"
    videos = split_videos(small_synth)
    result = videoml("extract", *videos, "-m", str(checkpoint), "-o", str(out), "--views", "2", "--crops", "3",
                     "--num-workers", "1", "--batch-size", "4", "--format", "hdf5")
    assert result.returncode == 0, result.stderr[-3000:]
    features = load_features(out)
    assert features.paths == videos  # input order, each once
    model, _ = load_trained(checkpoint)
    head = dict(model.named_modules())[classifier_name(model)]
    reference = reference_clips(checkpoint, small_synth, views=2, crops=3)
    for path, clips, record in zip(features.paths, features.clips, features.records):
        assert clips.shape == (6, head.in_features) and clips.dtype == np.float32  # 2 views x 3 crops
        assert record["dim"] == head.in_features and len(record["starts"]) == 2 and record["crops"] == 3
        with torch.inference_mode():
            logits = model(reference[path])
            scored = head(torch.from_numpy(clips))
        torch.testing.assert_close(scored, logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(features.videos, np.stack([c.mean(0) for c in features.clips]), rtol=1e-6)
    with h5py.File(out / "features.h5") as f:  # the packed file holds the same arrays
        assert [p.decode() for p in f["path"][:]] == videos
        np.testing.assert_array_equal(f["video"][:], features.videos)
        np.testing.assert_array_equal(f["clip"][:], np.concatenate(features.clips))
        assert f["clip_video"][:].tolist() == [row for row in range(len(videos)) for _ in range(6)]
        assert f["clip_start"][:6].tolist() == [s for s in features.records[0]["starts"] for _ in range(3)]


@pytest.mark.slow
def test_a_named_block_gives_its_output_pooled_over_time_and_space(small_synth, checkpoint, tmp_path):
    out = tmp_path / "features"
    videos = split_videos(small_synth)[:2]
    result = videoml("extract", *videos, "-m", str(checkpoint), "-o", str(out), "--views", "2", "--crops", "1",
                     "--layer", "blocks.4", "--num-workers", "0", "--precision", "32-true")
    assert result.returncode == 0, result.stderr[-3000:]
    model, _ = load_trained(checkpoint)
    reference = reference_clips(checkpoint, small_synth, views=2, crops=1)
    for path, clips in zip(*[load_features(out).paths, load_features(out).clips]):
        x = reference[path]
        with torch.inference_mode():
            for block in model.blocks[:5]:  # the stem and the four stages, by hand
                x = block(x)
        torch.testing.assert_close(torch.from_numpy(clips), x.mean((2, 3, 4)), atol=1e-4, rtol=1e-4)


def test_resume_adds_only_what_is_missing_and_bad_files_are_recorded(small_synth, checkpoint, tmp_path):
    out = tmp_path / "features"
    videos = split_videos(small_synth, "train")[:4]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    first = videoml("extract", *videos[:2], "-m", str(checkpoint), "-o", str(out), "--num-workers", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    kept = (out / "videos" / f"{read_records(out / 'index.jsonl')[0]['features']}.npy").stat().st_mtime_ns
    again = videoml("extract", *videos, str(broken), "-m", str(checkpoint), "-o", str(out), "--num-workers", "0")
    assert again.returncode == 2 and "exists: --resume to go on with it" in again.stderr
    resumed = videoml("extract", *videos, str(broken), "-m", str(checkpoint), "-o", str(out), "--num-workers", "0",
                      "--resume", "--parquet", str(tmp_path / "f.parquet"))
    assert resumed.returncode == EXIT_SOME_FAILED, resumed.stderr[-3000:]
    assert "2 done, 1 failed, 2 skipped" in resumed.stderr
    records = read_records(out / "index.jsonl")
    assert sorted(r["path"] for r in records) == sorted([*videos, str(broken)])  # each once
    failed = [r for r in records if r["status"] == "error"]
    assert [r["path"] for r in failed] == [str(broken)] and "broken.mp4: not a readable video" in failed[0]["error"]
    assert (out / "videos" / f"{records[0]['features']}.npy").stat().st_mtime_ns == kept  # not extracted again
    features = load_features(out)
    assert len(features.paths) == 4
    # the Parquet tables: every record (the resumed run's and the first's), the embeddings of the arrays
    table = pq.read_table(tmp_path / "f.parquet").to_pylist()
    assert [row["path"] for row in table] == [r["path"] for r in records]
    ok = [row for row in table if row["status"] == "ok"]
    np.testing.assert_array_equal(np.array([row["embedding"] for row in ok], np.float32), features.videos)
    clips = pq.read_table(tmp_path / "f.clips.parquet")
    assert clips.schema.field("embedding").type.value_type == "float"  # float32, as the arrays
    np.testing.assert_array_equal(np.array(clips.column("embedding").to_pylist(), np.float32),
                                  np.concatenate(features.clips))


def test_options_that_cannot_work_are_one_line_errors(small_synth, checkpoint, tmp_path):
    video = split_videos(small_synth)[0]
    cases = {("--layer", "blocks.99"): "has no layer 'blocks.99'",
             ("-m", str(tmp_path / "model.ts")): "no such model file",
             ("-m", "zoo:nope"): "unknown published weights 'zoo:nope'"}
    for args, message in cases.items():
        result = videoml("extract", video, "-m", str(checkpoint), "-o", str(tmp_path / "o"), *args)
        assert result.returncode in (1, 2), result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_an_export_of_features_extracts_what_the_checkpoint_does_and_is_no_classifier(small_synth, checkpoint,
                                                                                      tmp_path):
    videos = split_videos(small_synth)[:3]
    exported = videoml("export", str(checkpoint), "-f", "pt2", "--features", "head", "-o", str(tmp_path / "f.pt2"))
    assert exported.returncode == 0, exported.stderr[-3000:]
    for model, out in ((str(checkpoint), "a"), (str(tmp_path / "f.pt2"), "b")):
        result = videoml("extract", *videos, "-m", model, "-o", str(tmp_path / out), "--num-workers", "0",
                         "--precision", "32-true")  # (an export runs as exported: float32)
        assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_features(tmp_path / "a"), load_features(tmp_path / "b")
    assert a.paths == b.paths == videos
    np.testing.assert_allclose(b.videos, a.videos, atol=1e-4, rtol=1e-4)
    refused = videoml("infer", videos[0], "-m", str(tmp_path / "f.pt2"), "-o", str(tmp_path / "p.jsonl"))
    assert refused.returncode == 2 and "not class scores: use videoml extract with it" in refused.stderr
    logits = videoml("export", str(checkpoint), "-f", "pt2", "-o", str(tmp_path / "l.pt2"))
    assert logits.returncode == 0, logits.stderr[-3000:]
    refused = videoml("extract", videos[0], "-m", str(tmp_path / "l.pt2"), "-o", str(tmp_path / "c"))
    assert refused.returncode == 2 and "export it with --features head for extract" in refused.stderr


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused_and_the_output_is_left_as_it_was(small_synth, checkpoint, tmp_path):
    videos, out = split_videos(small_synth)[:2], tmp_path / "features"
    first = videoml("extract", videos[0], "-m", str(checkpoint), "-o", str(out), "--num-workers", "0",
                    "--precision", "32-true")
    assert first.returncode == 0, first.stderr[-3000:]
    index = (out / "index.jsonl").read_text()
    for option in (("--layer", "blocks.2"), ("--views", "3"), ("--crops", "3"), ("--precision", "bf16-mixed")):
        other = videoml("extract", *videos, "-m", str(checkpoint), "-o", str(out), "--num-workers", "0", "--resume",
                        *option)
        assert other.returncode == 2 and "its features were extracted with other settings" in other.stderr
        assert option[0].lstrip("-") in other.stderr and (out / "index.jsonl").read_text() == index
    settings = json.loads((out / "extract.json").read_text())
    settings["settings"]["precision"] = "fp32"  # as earlier releases named 32-true: the same features
    (out / "extract.json").write_text(json.dumps(settings))
    same = videoml("extract", *videos, "-m", str(checkpoint), "-o", str(out), "--num-workers", "0", "--resume",
                   "--precision", "32-true")
    assert same.returncode == 0, same.stderr[-3000:]
    assert len(load_features(out).paths) == 2  # one kind of features: they load together


def test_each_record_says_the_precision_its_features_were_computed_at(small_synth, checkpoint, tmp_path,
                                                                     monkeypatch):
    """extract.json keeps the precision asked for (what a resumed run must ask again); a record, the one the model
    ran at: float32 where the first batch's check against the float32 model gave way to it."""
    monkeypatch.setitem(TOLERANCE, "bf16-mixed", 1e-7)  # as a model whose features bfloat16 moves too far
    videos, runs = split_videos(small_synth)[:2], {}
    for precision in ("bf16-mixed", "32-true"):  # the fallback: the model as it is (its folded graph checked out)
        out = tmp_path / precision
        summary = infer(ExtractConfig(model=str(checkpoint), inputs=videos, out=str(out), num_workers=0,
                                      precision=precision, optimize=precision == "bf16-mixed", progress=False))
        assert summary.failed == 0
        runs[precision] = load_features(out)
        assert json.loads((out / "extract.json").read_text())["settings"]["precision"] == precision
    assert [r["precision"] for r in runs["bf16-mixed"].records] == ["32-true"] * 2
    assert [r["precision"] for r in runs["32-true"].records] == ["32-true"] * 2
    np.testing.assert_allclose(runs["bf16-mixed"].videos, runs["32-true"].videos, rtol=1e-6)  # float32's features
