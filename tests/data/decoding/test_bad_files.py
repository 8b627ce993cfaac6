"""A corpus of broken files made here, and the errors they must give."""

import logging
import shutil

import av
import numpy as np
import pytest
from helpers import installed, write_audio_only

from videoml.data.conformance import FFmpegFrames
from videoml.data.decoding import backend_available, open_video
from videoml.errors import VideoDecodeError

BACKENDS = ["pyav", installed("decord")]


@pytest.fixture
def broken(tmp_path, corpus):
    mp4 = corpus["h264"].read_bytes()
    files = {
        "missing": (tmp_path / "nothing-here.mp4", "no such file"),
        "empty": (tmp_path / "empty.mp4", "empty file"),
        "garbage": (tmp_path / "garbage.mp4", "not a readable video"),
        "audio": (tmp_path / "audio.wav", "no video stream"),
        "truncated_mp4": (tmp_path / "truncated.mp4", "not a readable video"),  # the index (moov) is at the end
        "directory": (tmp_path / "a-folder.mp4", "a folder, not a video"),
    }
    files["empty"][0].write_bytes(b"")
    files["garbage"][0].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    write_audio_only(files["audio"][0])
    files["truncated_mp4"][0].write_bytes(mp4[: len(mp4) // 2])
    files["directory"][0].mkdir()
    return files


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["missing", "empty", "garbage", "audio", "truncated_mp4", "directory"])
def test_unreadable_files_raise_a_decode_error_naming_the_file_and_cause(broken, name, backend):
    path, cause = broken[name]
    with pytest.raises(VideoDecodeError) as error:
        open_video(path, backend=backend)
    assert str(error.value).startswith(f"{path}: ")
    assert cause in str(error.value)


def _damage_packets(source, target, packets):
    """Zero the last two thirds of some packets' payload (by decode-order number): the decoder rejects some of them
    outright and conceals the damage in the pictures of others."""
    with av.open(str(source)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(source.read_bytes())
    for n in packets:
        pos, size = spans[n]
        data[pos + size // 3:pos + size] = bytes(size - size // 3)
    target.write_bytes(data)


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line (the ground truth)")
def test_damaged_files_give_ffmpegs_pictures_and_damaged_ones_follow_the_policy(corpus, tmp_path, caplog):
    bad = tmp_path / "damaged.mp4"
    _damage_packets(corpus["h264"], bad, [5, 12])
    truth = FFmpegFrames(bad)
    assert len(truth) < 60  # a rejected packet shows no picture in FFmpeg: it is not a frame here either
    with open_video(bad) as video:
        assert video.num_frames == len(truth) and video.index.numbering == "sequential"
        with pytest.raises(VideoDecodeError, match=f"{bad}: .*could not be decoded"):
            video.get_frames(range(len(truth))).data
    with open_video(bad, bad_frames="nearest") as video, caplog.at_level(logging.WARNING):
        frames = video.get_frames(range(len(truth))).data.numpy()
        replaced = video.replaced
    assert replaced and len(replaced) <= 3  # pictures the decoder flags as concealed damage
    for i in range(len(truth)):
        if i in replaced:  # a copy of the nearest frame that is not damaged
            nearest = min((j for j in range(len(truth)) if j not in replaced), key=lambda j: abs(j - i))
            assert np.array_equal(frames[i], frames[nearest])
        else:
            assert np.array_equal(frames[i], truth[i]), i
    assert f"{len(replaced)} frame(s) could not be decoded" in caplog.text and str(bad) in caplog.text
    for backend in ("decord", "torchcodec"):  # they cannot decode from the start only: refused, with the reason
        if backend_available(backend):
            with pytest.raises(VideoDecodeError, match="damaged.*use the pyav backend"):
                open_video(bad, backend=backend)


def _ts(path, width, height, frames=12):
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            rgb = np.full((height, width, 3), 15 * i, np.uint8)
            rgb[:, : width // 2, 0] = 255  # a left half in red: scaling shows
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line (the ground truth)")
def test_pictures_that_change_size_midway_are_shown_at_the_first_size_as_ffmpeg_does(tmp_path):
    from helpers import videoml

    from videoml.data.conformance import check_file

    _ts(tmp_path / "a.ts", 64, 48)
    _ts(tmp_path / "b.ts", 96, 64)
    joined = tmp_path / "joined.ts"  # as `cat a.ts b.ts` joins two recordings
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    verdict = check_file(joined, ("pyav",))[0]  # (FFmpeg loses a picture where the streams meet)
    assert verdict.status == "exact" and verdict.frames >= 22, verdict
    with open_video(joined) as video:
        assert video.get_frames(list(range(verdict.frames))).data.shape == (verdict.frames, 48, 64, 3)
        assert video.get_frames([verdict.frames - 1], size=32).data.shape == (1, 32, 42, 3)
    result = videoml("data", "check", str(joined))
    assert "pictures change size midway (64x48, 96x64)" in result.stdout and "1 warn" in result.stderr
