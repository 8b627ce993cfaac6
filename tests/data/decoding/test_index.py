import os

import av
import numpy as np
import pytest
from helpers import decode_all

from videoml.data.decoding import build_index, load_index, open_video


def decodable_frames(path) -> int:
    """Frames PyAV decodes from ``path``, packet by packet, skipping packets that fail (a cut file's last one)."""
    count = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.InvalidDataError:
                pass
    return count


def test_index_counts_the_frames_that_decode_not_the_header(corpus, tmp_path):
    # An AVI header states its frame count up front; cut the file and the header still claims all 60.
    source = corpus["mpeg4_avi"]
    cut = tmp_path / "cut.avi"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
    index = build_index(cut)
    assert index.header["frames"] == 60
    assert 20 < index.num_frames < 60
    assert index.num_frames <= decodable_frames(cut) + 1  # at most the last, partial packet fails to decode
    with open_video(cut, bad_frames="nearest") as video:
        assert video.get_frames(list(range(video.num_frames))).data.shape[0] == index.num_frames


def test_key_frames_follow_the_gop(corpus):
    index = build_index(corpus["h264_long_gop"])
    assert index.keyframes.tolist() == [0, 40, 80]
    assert index.key_before[[0, 39, 40, 79, 89]].tolist() == [0, 0, 40, 40, 80]
    assert index.reordered and not build_index(corpus["mpeg4_avi"]).reordered


def test_index_is_cached_and_rebuilt_when_the_file_changes(corpus, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(corpus["h264"].read_bytes())
    cache = tmp_path / "idx"
    first = load_index(video, cache)
    entries = list((cache / "index").iterdir())
    assert len(entries) == 1
    cached_at = entries[0].stat().st_mtime_ns
    again = load_index(video, cache)
    assert entries[0].stat().st_mtime_ns == cached_at  # read, not rewritten
    np.testing.assert_array_equal(again.pts, first.pts)
    assert again.time_base == first.time_base and again.header == first.header

    video.write_bytes(corpus["h264_long_gop"].read_bytes())  # another video under the same name
    os.utime(video, ns=(cached_at + 10**9, cached_at + 10**9))
    assert load_index(video, cache).num_frames == 90


def test_index_survives_a_damaged_cache_entry_and_a_read_only_cache(corpus, tmp_path):
    cache = tmp_path / "idx"
    load_index(corpus["h264"], cache)
    entry = next((cache / "index").iterdir())
    entry.write_bytes(b"garbage")
    assert load_index(corpus["h264"], cache).num_frames == 60
    assert load_index(corpus["h264"], False).num_frames == 60
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert load_index(corpus["h264"], blocked).num_frames == 60


@pytest.mark.parametrize("kind", ["h264_vfr_start", "vp9_vfr_start"])
def test_variable_rate_time_stamps_are_the_files(corpus, kind):
    index = build_index(corpus[kind])
    _, times = decode_all(corpus[kind])
    np.testing.assert_allclose(index.timestamps, times, atol=1e-9)
    assert np.ptp(np.diff(index.timestamps)) > 0.02
