from fractions import Fraction

import numpy as np
import pytest
import torch
from helpers import BACKEND_PARAMS, CORPUS, decode_all, decord3, installed

from videoml.data.conformance import check_file
from videoml.data.decoding import open_video
from videoml.data.encode import Encoding, encode_video
from videoml.errors import VideoDecodeError


# Files a backend is known to decode wrongly: the reader refuses them rather than return other pictures.
REFUSED = {("decord", "mpeg4_avi_bframes"), ("torchcodec", "mpeg4_avi_bframes")}
if decord3():  # decord2's 3.x (aarch64) refuses HEVC with B-frames
    REFUSED.add(("decord", "hevc"))
# YUV->RGB conversion of the same decoded picture may round differently (decord converts on its own); PyAV is the
# reference and must match itself exactly.
TOLERANCE = {"pyav": 0, "decord": 3, "torchcodec": 3}


@pytest.fixture(scope="module")
def references(corpus):
    return {kind: decode_all(path) for kind, path in corpus.items()}


@pytest.mark.parametrize("kind", list(CORPUS))
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_same_index_same_picture_in_every_backend(corpus, references, kind, backend):
    frames, times = references[kind]
    if (backend, kind) in REFUSED:
        with pytest.raises(VideoDecodeError, match=str(corpus[kind].name)):
            open_video(corpus[kind], backend=backend).get_frames(list(range(len(frames)))).data
        return
    rng = np.random.default_rng(7)
    with open_video(corpus[kind], backend=backend) as video:
        assert video.num_frames == len(frames)
        np.testing.assert_allclose(video.timestamps, times, atol=1e-6)
        # forward, backward, repeated, unsorted, across key frames, on the same open reader
        requests = [[0], [len(frames) - 1], [3, 3, 1], list(range(len(frames)))]
        requests += [rng.integers(0, len(frames), size=int(rng.integers(1, 12))).tolist() for _ in range(25)]
        for indices in requests:
            got = video.get_frames(indices).data
            assert got.dtype == torch.uint8 and got.shape == (len(indices), 48, 64, 3)
            difference = np.abs(got.numpy().astype(int) - frames[indices]).max()
            assert difference <= TOLERANCE[backend], (indices, difference)


@pytest.mark.parametrize("kind", ["h264_vfr_start", "vp9_vfr_start"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_frames_come_with_the_time_stamps_the_decoder_gives_them(corpus, references, kind, backend):
    """Variable frame rate and a start offset: each frame's time is the one FFmpeg's decoder gives that picture
    (the reference decode), and it is shown until the next one."""
    frames, times = references[kind]
    times, last = np.asarray(times), len(frames) - 1
    with open_video(corpus[kind], backend=backend) as video:
        batch = video.get_frames([5, 0, last, 5])
        clips = video.get_clips(np.array([[0, 1, 2], [last - 2, last - 1, last]]))
    np.testing.assert_allclose(batch.pts_seconds.numpy(), times[[5, 0, last, 5]], atol=1e-6)
    assert times[0] > 0 and len(set(np.round(np.diff(times), 6))) > 1  # the file is what the test is about
    np.testing.assert_allclose(batch.duration_seconds[:2].numpy(), (times[6] - times[5], times[1] - times[0]),
                               atol=1e-6)
    assert float(batch.duration_seconds[2]) == pytest.approx((times[-1] - times[0]) / last)  # the mean, last
    assert clips.data.shape[:2] == clips.pts_seconds.shape == (2, 3)
    np.testing.assert_allclose(clips.pts_seconds.numpy(), times[[[0, 1, 2], [last - 2, last - 1, last]]], atol=1e-6)


@pytest.mark.parametrize("kind", ["h264", "hevc", "mpeg4_avi_bframes"])
def test_frame_by_frame_reads_in_order_and_back(corpus, references, kind):
    # Each call leaves the decoder a few packets ahead (B-frame delay); the next call wants one of those frames.
    frames, _ = references[kind]
    with open_video(corpus[kind]) as video:
        for i in list(range(len(frames))) + [5, 4, 3, 30, 29]:
            np.testing.assert_array_equal(video.get_frames([i]).data[0].numpy(), frames[i])


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_output_size_scales_while_converting(corpus, references, backend):
    frames, _ = references["h264"]
    with open_video(corpus["h264"], backend=backend) as video:
        short = video.get_frames([4, 9], size=30).data
        exact = video.get_frames([4, 9], size=(20, 30)).data
        full = video.get_frames([4, 9]).data
    assert short.shape == (2, 30, 40, 3) and exact.shape == (2, 20, 30, 3)
    reference = torch.nn.functional.interpolate(full.permute(0, 3, 1, 2).float(), size=(30, 40), mode="bilinear",
                                                antialias=True).permute(0, 2, 3, 1)
    assert (short.float() - reference).abs().mean() < 4  # same picture, scaled (filters differ slightly)


def test_get_clips_decodes_shared_frames_once_and_keeps_their_order(corpus, references):
    frames, _ = references["h264_long_gop"]
    clips = np.array([[0, 4, 8, 12], [8, 12, 16, 20], [80, 84, 88, 89]])
    with open_video(corpus["h264_long_gop"]) as video:
        got = video.get_clips(clips).data
    assert got.shape == (3, 4, 48, 64, 3)
    np.testing.assert_array_equal(got.numpy(), frames[clips])


def test_bad_indices_and_arguments_are_named(corpus):
    with open_video(corpus["h264"]) as video:
        with pytest.raises(IndexError, match=f"{corpus['h264']}: frame 60 out of range \\(the video has 60 frames\\)"):
            video.get_frames([0, 60]).data
        with pytest.raises(IndexError, match="frame -1"):
            video.get_frames([-1]).data
        with pytest.raises(ValueError, match="no frame indices"):
            video.get_frames([]).data
    with pytest.raises(ValueError, match="unknown backend 'ffmpeg'"):
        open_video(corpus["h264"], backend="ffmpeg")
    with pytest.raises(ValueError, match="bad_frames"):
        open_video(corpus["h264"], bad_frames="skip")


def test_auto_backend_opens_what_pyav_opens(corpus):
    with open_video(corpus["vp9_vfr_start"], backend="auto") as video:
        assert video.backend == "pyav"


def test_reader_reports_what_the_file_is(corpus):
    with open_video(corpus["h264_vfr_start"]) as video:
        assert (video.width, video.height, video.index.codec) == (64, 48, "h264")
        assert video.timestamps[0] == pytest.approx(1.5)
        assert 10 < video.fps < 22  # 16 fps nominal, intervals jittered
        assert video.duration == pytest.approx(60 / video.fps)
        assert video.index.reordered  # B-frames
        assert "frames=60" in repr(video)


@pytest.mark.parametrize("backend", [installed("decord")])
def test_decord_widths_its_conversion_fails_are_scaled_here_or_refused_when_stored(corpus, tmp_path, backend):
    """decord fails every picture of some widths (72 with 0.6.0, 96 with decord2's 3.x, and others)."""
    with open_video(corpus["h264"], backend=backend) as video, open_video(corpus["h264"]) as reference:
        for width in (72, 96):  # asked for: decoded as stored, scaled like torchvision's Resize
            got, want = video.get_frames([3, 9], size=(54, width)).data, reference.get_frames([3, 9], size=(54, width)).data
            assert got.shape == (2, 54, width, 3) and (got.float() - want.float()).abs().mean() < 4
    for width in (72, 96):  # stored so: FFmpeg's pictures, or a refusal naming the width
        path = tmp_path / f"{width}.mp4"
        encode_video([np.full((48, width, 3), 10 * i, np.uint8) for i in range(8)], [i / 8 for i in range(8)], path,
                     Encoding(frame_rate=Fraction(8)))
        verdict = check_file(path, (backend,))[0]
        assert verdict.status == "exact" or f"cannot convert pictures {width} pixels wide" in verdict.detail, verdict
