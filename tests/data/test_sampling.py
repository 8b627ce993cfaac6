import numpy as np
import pytest

from videoml.data.decoding import open_video
from videoml.data.sampling import (ClipSpec, clip_at, dense_clips, last_start, random_clip, random_clips,
                                   uniform_clips)


def test_a_clip_is_exactly_t_frames_tau_apart():
    spec = ClipSpec(frames=8, stride=8)
    assert last_start(spec, 100) == 100 - 57
    np.testing.assert_array_equal(clip_at(spec, 100, 10), 10 + 8 * np.arange(8))
    for seed in range(50):
        clip = random_clip(spec, 100, rng=seed)
        assert len(clip) == 8 and 0 <= clip[0] <= 43 and clip[-1] <= 99
        np.testing.assert_array_equal(np.diff(clip), 8)


def test_random_clips_are_deterministic_per_seed_and_cover_every_start():
    spec = ClipSpec(frames=4, stride=2)
    a = random_clips(spec, 30, count=500, rng=3)
    np.testing.assert_array_equal(a, random_clips(spec, 30, count=500, rng=3))
    assert not np.array_equal(a, random_clips(spec, 30, count=500, rng=4))
    assert set(a[:, 0].tolist()) == set(range(0, 30 - 7 + 1))


def test_uniform_views_span_first_to_last_start():
    spec = ClipSpec(frames=8, stride=4)
    views = uniform_clips(spec, 100, views=10)
    assert views.shape == (10, 8)
    assert views[0, 0] == 0 and views[-1, -1] == 99  # last start 71, its clip ends on the last frame
    np.testing.assert_array_equal(views[:, 0], np.rint(np.linspace(0, 71, 10)).astype(int))
    assert uniform_clips(spec, 100, views=1)[0, 0] == 0  # PyTorchVideo and PySlowFast agree here


@pytest.mark.parametrize("pad, expected", [("repeat_last", [0, 3, 6, 9, 9, 9]), ("loop", [0, 3, 6, 9, 2, 5])])
def test_short_videos_are_padded_never_shortened(pad, expected):
    spec = ClipSpec(frames=6, stride=3, pad=pad)
    assert last_start(spec, 10) == 0
    np.testing.assert_array_equal(random_clip(spec, 10, rng=0), expected)
    assert uniform_clips(spec, 10, views=3).shape == (3, 6)


def test_dense_clips_cover_the_whole_video():
    spec = ClipSpec(frames=4, stride=2)  # a clip spans 7 frames
    clips = dense_clips(spec, 30)
    np.testing.assert_array_equal(clips[:, 0], [0, 7, 14, 21, 23])
    assert clips[-1, -1] == 29
    np.testing.assert_array_equal(dense_clips(spec, 30, step=10)[:, 0], [0, 10, 20, 23])


def test_target_fps_samples_by_time_on_variable_rate_video():
    # 60 fps for one second, then 10 fps for two seconds
    stamps = np.concatenate([np.arange(60) / 60, 1 + np.arange(20) / 10])
    spec = ClipSpec(frames=5, fps=5.0)
    clip = clip_at(spec, stamps, 0)  # times 0, 0.2, 0.4, 0.6, 0.8
    np.testing.assert_allclose(stamps[clip], [0, 0.2, 0.4, 0.6, 0.8], atol=1e-9)
    late = clip_at(spec, stamps, 60)  # times 1.0 .. 1.8 at 10 fps source
    np.testing.assert_allclose(stamps[late], [1.0, 1.2, 1.4, 1.6, 1.8], atol=1e-9)
    assert stamps[last_start(spec, stamps)] <= stamps[-1] - 0.8 + 1e-9
    with pytest.raises(ValueError, match="time stamps"):
        clip_at(spec, 80, 0)


def test_target_fps_on_a_real_variable_rate_file(corpus):
    with open_video(corpus["h264_vfr_start"]) as video:
        clips = uniform_clips(ClipSpec(frames=8, fps=4.0), video.timestamps, views=3)
        frames = video.get_clips(clips).data
        times = video.timestamps[clips]
    assert frames.shape[:2] == (3, 8)
    # every clip frame is the one on screen 0.25 s after the previous one
    expected = times[:, :1] + np.arange(8) / 4.0
    shown_until = np.append(video.timestamps[1:], np.inf)[clips]
    assert np.all((times <= expected + 1e-9) & (expected < shown_until))


@pytest.mark.parametrize("bad", [dict(frames=0), dict(frames=4, stride=0), dict(frames=4, fps=-1.0),
                                 dict(frames=4, pad="mirror")])
def test_bad_clip_specs_are_named(bad):
    with pytest.raises(ValueError):
        ClipSpec(**bad)
