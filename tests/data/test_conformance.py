"""Every backend against FFmpeg's decoder on the conformance corpus: real files from Debian packages and generated
files for the classes no package ships (videoml.data.corpus)."""

import json
import shutil

import numpy as np
import pytest
from helpers import videoml

from videoml.data.conformance import FFmpegFrames, check_backend
from videoml.data.corpus import corpus, corpus_dir, describe
from videoml.data.decoding import VideoBytes, VideoDecodeError, build_index, open_video

pytestmark = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("apt-get")),
                                reason="needs FFmpeg's command line and apt-get (Debian)")


@pytest.fixture(scope="module")
def files():
    return corpus()


def test_the_corpus_is_real_files_from_several_packages_plus_generated_ones(files):
    real = [f for f in files if f.parent.parent.name == "debian"]
    assert len(real) >= 30 and len({f.parent.name for f in real}) >= 5
    assert all(describe(f) for f in files)  # every file says what it exercises (and where it comes from)
    assert sum(f.stat().st_size for f in files) < 200e6


@pytest.mark.slow
def test_every_backend_returns_ffmpegs_pictures_or_refuses_with_a_reason(files, tmp_path):
    records = tmp_path / "verdicts.jsonl"
    result = videoml("data", "conformance", "--jsonl", str(records), "--num-workers", "2")
    verdicts = [json.loads(line) for line in records.read_text().splitlines()]
    assert result.returncode == 0, result.stdout[-3000:]
    # nothing but the closing line: no library's own log lines (decord's "Failed to seek", its FFmpeg's "[h264 @ ...]")
    assert result.stderr.strip().splitlines() == [f"{sum(v['status'] == 'exact' for v in verdicts)} exact, "
                                                  f"{sum(v['status'] == 'refused' for v in verdicts)} refused, 0 wrong "
                                                  f"({len(files)} files x {len({v['backend'] for v in verdicts})} "
                                                  "backends)"]
    assert len(verdicts) == len(files) * len({v["backend"] for v in verdicts})
    assert not [v for v in verdicts if v["status"] == "wrong"]
    assert all(v["detail"] for v in verdicts if v["status"] == "refused")
    # PyAV reads every file FFmpeg decodes; it refuses only to hand out pictures the decoder flags as damaged
    refused = {v["path"].split("/")[-1]: v["detail"] for v in verdicts if v["backend"] == "pyav"
               and v["status"] != "exact"}
    assert set(refused) == {"corrupt.mkv"} and "could not be decoded" in refused["corrupt.mkv"]
    assert "| debian/python3-mecavideo/Force_constante.avi | 26 | exact |" in result.stdout


def test_packed_b_frames_edit_lists_and_discontinuities_are_numbered_by_decoding(files):
    by_name = {f.name: f for f in files}
    cases = {"Force_constante.avi": ("decoded", "packed B-frames"), "joined.ts": ("sequential", "discontinuity"),
             "blue.mpg": ("sequential", "without time stamps"),
             "edit_list.mp4": ("decoded", "edit list")}
    for name, (numbering, note) in cases.items():
        with open_video(by_name[name], cache_dir=False) as video:
            assert video.index.numbering == numbering, name
            assert note in "; ".join(video.index.notes), (name, video.index.notes)
    with open_video(by_name["movie-hello.mp4"], cache_dir=False) as video:
        assert video.num_frames == 249 and video.index.header["frames"] == 250  # the last packet shows nothing


def test_display_matrices_are_applied_like_ffmpegs_command_line_or_not_at_all(files):
    path = next(f for f in files if f.name == "rotate_90.mp4")
    upright, stored = FFmpegFrames(path), FFmpegFrames(path, autorotate=False)
    with open_video(path) as video, open_video(path, autorotate=False) as raw:
        assert (video.rotation, video.width, video.height) == (90, 96, 160)
        assert (raw.width, raw.height) == (160, 96)
        np.testing.assert_array_equal(video.get_frames([7]).data.numpy()[0], upright[7])
        np.testing.assert_array_equal(raw.get_frames([7]).data.numpy()[0], stored[7])
        assert video.get_frames([7], size=48).data.shape == (1, 80, 48, 3)  # short side 48, upright


def test_the_harness_reports_other_pictures_as_wrong(files):
    by_name = {f.name: f for f in files}
    other = FFmpegFrames(by_name["rotate_180.mp4"])  # same size and length, pictures upside down
    verdict = check_backend(str(by_name["rotate_90.mp4"]), "pyav", other, autorotate=False)
    assert verdict.status == "wrong" and verdict.detail.startswith("frame 0 differs")
    assert str(corpus_dir()) in str(by_name["rotate_90.mp4"])


# Real files of every family the readers special-case, and the damaged one.
FOLDER = ["Force_constante.avi", "alea.mpg", "blue.mpg", "message-board.ogv", "homer.avi", "3gp.3gp", "flv.flv",
          "movie-hello.mp4", "edit_list.mp4", "joined.ts", "rotate_90.mp4", "hevc_10bit.mkv", "corrupt.mkv"]


@pytest.mark.slow
def test_infer_and_training_data_on_corpus_files_replace_no_frame(files, checkpoint, tmp_path, caplog):
    folder = tmp_path / "videos"
    folder.mkdir()
    by_name = {f.name: f for f in files}
    for name in FOLDER:
        (folder / name).symlink_to(by_name[name])
    out = tmp_path / "out.jsonl"
    result = videoml("infer", str(folder), "-m", str(checkpoint), "-o", str(out), "--num-workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    got = {r["path"].split("/")[-1]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(got) == set(FOLDER) and all(r["status"] == "ok" for r in got.values())
    assert {name for name, r in got.items() if r["replaced_frames"]} <= {"corrupt.mkv"}

    from videoml.data.clips import SampleKey
    from videoml.data.datamodule import VideoDataModule
    from videoml.models.registry import model_input

    listing = tmp_path / "train.csv"
    listing.write_text("".join(f"{folder / name} 0\n" for name in FOLDER if name != "corrupt.mkv"))
    data = VideoDataModule(train={"kind": "labeled_paths", "path": str(listing)}, spec=model_input("x3d_tiny"), num_workers=0)
    clips = data.clips.dataset("train")
    with caplog.at_level("WARNING"):
        samples = [clips[SampleKey(i, epoch)] for epoch in range(2) for i in range(len(clips))]
    assert not any(s.bad for s in samples)
    assert "could not be decoded" not in caplog.text and "skipping" not in caplog.text


def test_a_newly_opened_reader_starts_at_a_later_key_frame_as_ffmpeg_decodes_from_the_start(files):
    """x264 before build 151 coded lossless 4:4:4 intra blocks its own way, and FFmpeg decodes them so only after
    reading x264's version in the first packet: every backend must have its decoder see it first."""
    from videoml.data.decoding import backend_available

    path = next(f for f in files if f.name == "cockatoo.mp4")
    with open_video(path, cache_dir=False) as video:
        assert video.index.needs_primer and video.index.header["x264_build"] == 142
        assert list(video.index.keyframes) == [0, 76, 145]
    truth = FFmpegFrames(path)
    try:
        for backend in ("pyav", "torchcodec", "decord"):
            if backend_available(backend):
                verdict = check_backend(str(path), backend, truth)
                assert verdict.status == "exact", verdict
    finally:
        truth.close()


@pytest.mark.slow
def test_every_corpus_file_in_memory_is_numbered_and_read_as_the_file(files):
    """A shard's sample (``VideoBytes``) keeps the file's frame numbering, edits, discontinuities and all."""
    for path in files:
        try:
            index = build_index(path)
        except VideoDecodeError as e:
            with pytest.raises(VideoDecodeError) as in_memory:
                build_index(VideoBytes(path.name, path.read_bytes()))
            assert in_memory.value.reason == e.reason, path
            continue
        in_memory = build_index(VideoBytes(path.name, path.read_bytes()))
        assert np.array_equal(in_memory.pts, index.pts) and in_memory.numbering == index.numbering, path
        frames = np.random.default_rng(1).choice(index.num_frames, min(8, index.num_frames), replace=False)
        with open_video(path, bad_frames="nearest", index=index) as video, \
                open_video(VideoBytes(path.name, path.read_bytes()), bad_frames="nearest", index=in_memory) as bytes_:
            assert bool((video.get_frames(frames).data == bytes_.get_frames(frames).data).all()), path
