"""A corpus of broken files made here, and the errors they must give."""

import logging

import av
import numpy as np
import pytest

from videoml.data.decoding import open_video
from videoml.errors import VideoDecodeError

BACKENDS = ["pyav", "decord"]


def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture
def broken(tmp_path, corpus):
    mp4 = corpus["h264"].read_bytes()
    files = {
        "missing": (tmp_path / "nothing-here.mp4", "no such file"),
        "empty": (tmp_path / "empty.mp4", "empty file"),
        "garbage": (tmp_path / "garbage.mp4", "not a readable video"),
        "audio": (tmp_path / "audio.wav", "no video stream"),
        "truncated_mp4": (tmp_path / "truncated.mp4", "not a readable video"),  # the index (moov) is at the end
        "directory": (tmp_path / "a-folder.mp4", "not a regular file"),
    }
    files["empty"][0].write_bytes(b"")
    files["garbage"][0].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _audio_only(files["audio"][0])
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


def _corrupt_packets(source, target, packets):
    """Overwrite the payload of some packets (by their decode-order number) with zeros."""
    with av.open(str(source)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(source.read_bytes())
    for n in packets:
        pos, size = spans[n]
        data[pos:pos + size] = bytes(size)
    target.write_bytes(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_corrupt_frames_follow_the_policy(corpus, tmp_path, backend, caplog):
    bad = tmp_path / "corrupt.avi"
    _corrupt_packets(corpus["mpeg4_avi"], bad, [5, 12])  # no B-frames: packet n is frame n
    wanted = list(range(20))
    with open_video(bad, backend=backend) as video:
        with pytest.raises(VideoDecodeError, match=f"{bad}: .*could not be decoded"):
            video.get_frames(wanted)
    with open_video(bad, backend=backend, bad_frames="nearest") as video, caplog.at_level(logging.WARNING):
        try:
            frames = video.get_frames(wanted)
        except VideoDecodeError as e:
            # decord after a corrupt packet is best effort: on a loaded machine its threaded decoder was seen to fail
            # every frame, which must then be an error naming the file, never pictures from elsewhere
            assert backend == "decord" and str(e).startswith(f"{bad}: 20 frame(s) could not be decoded")
            return
        replaced = video.replaced
    assert frames.shape[0] == 20
    if backend == "pyav":
        assert replaced == [5, 12]
    else:  # decord loses more around a failed packet (up to the next key frame), and not the same frames every run
        assert {5, 12} <= set(replaced)
    # each replaced frame is a copy of the nearest frame that did decode
    decoded = [i for i in wanted if i not in replaced]
    for i in replaced:
        nearest = min(decoded, key=lambda j: abs(j - i))
        assert np.array_equal(frames[i], frames[nearest])
    assert f"{len(replaced)} frame(s) could not be decoded" in caplog.text and str(bad) in caplog.text
