"""A video in memory (``VideoBytes``: a sample read from a shard) is read as the file it was: the same frame index,
the same pictures for every frame in any order (so what the conformance suite ties to FFmpeg holds for it), the same
refusals, and messages that name it."""

import numpy as np
import pytest
from helpers import BACKEND_PARAMS, CORPUS, TRAITS

from videoml.data.decoding import VideoBytes, VideoDecodeError, build_index, open_video


def _opened(source, backend):
    try:
        return open_video(source, backend)
    except VideoDecodeError as e:
        return e.reason


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("kind", [*CORPUS, *TRAITS])
def test_a_video_in_memory_reads_as_its_file(kind, backend, corpus, traits):
    path = {**corpus, **traits}[kind]
    data = path.read_bytes()
    index = build_index(path)
    in_memory = build_index(VideoBytes("shard-00001.tar:clip", data))
    assert np.array_equal(in_memory.pts, index.pts) and np.array_equal(in_memory.keyframe, index.keyframe)
    assert (in_memory.numbering, in_memory.rotation, in_memory.header) == (index.numbering, index.rotation,
                                                                         index.header)
    from_file = _opened(path, backend)
    from_memory = _opened(VideoBytes("shard-00001.tar:clip", data), backend)
    if isinstance(from_file, str):  # a refusal (decord's of some files): the same one
        assert from_memory == from_file
        return
    order = np.random.default_rng(0).permutation(from_file.num_frames)[:12]  # seeks back and forth
    for frames in (order, np.arange(from_file.num_frames)):
        expected, got = from_file.get_frames(frames).data, from_memory.get_frames(frames).data
        assert got.shape == expected.shape and bool((got == expected).all())
    from_memory.close()
    from_file.close()

def test_a_video_in_memory_given_its_index_is_not_scanned_again_and_bad_bytes_are_named(corpus):
    path = corpus["h264"]
    index = build_index(path)
    video = open_video(VideoBytes("shard-7.tar:a", path.read_bytes()), index=index)
    assert video.index is index and video.num_frames == index.num_frames
    with pytest.raises(VideoDecodeError, match=r"^shard-7.tar:b: not a readable video"):
        open_video(VideoBytes("shard-7.tar:b", path.read_bytes()[:300]))
    with pytest.raises(VideoDecodeError, match=r"^shard-7.tar:c: empty \(0 bytes\)"):
        open_video(VideoBytes("shard-7.tar:c", b""))
