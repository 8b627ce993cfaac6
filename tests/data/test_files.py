"""The folder scan's extensions: every one is a video FFmpeg reads, written here by FFmpeg's own muxer for it."""

import shutil

import av
import numpy as np
import pytest
from helpers import INSTALLED

from videoml.data.conformance import check_file
from videoml.data.decoding import open_video
from videoml.data.files import VIDEO_DEMUXERS, VIDEO_EXTENSIONS, find_videos

# extension -> (muxer where FFmpeg does not pick one by the name, encoder, (width, height)); every listed extension
# has a row (the test below checks), so a new extension comes with a file that proves FFmpeg reads it
WRITERS = {
    ".mp4": (None, "mpeg4"), ".m4v": ("mp4", "mpeg4"), ".mov": (None, "mpeg4"), ".3gp": (None, "h263", (128, 96)),
    ".3g2": (None, "h263", (128, 96)), ".mj2": ("mov", "jpeg2000"), ".f4v": (None, "libx264"),
    ".mkv": (None, "mpeg4"), ".webm": (None, "libvpx"), ".mk3d": ("matroska", "mpeg4"),
    ".avi": (None, "mpeg4"),
    ".mpg": (None, "mpeg1video"), ".mpeg": (None, "mpeg1video"), ".vob": (None, "mpeg2video"),
    ".ts": (None, "mpeg2video"), ".m2ts": (None, "libx264"), ".mts": ("mpegts", "libx264"),
    ".m2t": ("mpegts", "mpeg2video"),
    ".m1v": (None, "mpeg1video"), ".m2v": (None, "mpeg2video"), ".mpv": ("mpeg1video", "mpeg1video"),
    ".h264": (None, "libx264"), ".264": ("h264", "libx264"), ".hevc": (None, "libx265"), ".265": ("hevc", "libx265"),
    ".wmv": (None, "wmv2"), ".asf": (None, "wmv2"), ".flv": (None, "flv"), ".ogv": ("ogg", "libvpx"),
    ".gif": (None, "gif"), ".y4m": (None, "rawvideo"), ".rm": (None, "rv20"), ".rmvb": ("rm", "rv20"),
    ".mxf": (None, "mpeg2video"), ".nut": (None, "mpeg4"), ".ivf": (None, "libvpx"), ".mjpeg": (None, "mjpeg"),
    ".mjpg": ("mjpeg", "mjpeg"), ".dv": (None, "dvvideo", (720, 576)), ".dif": ("dv", "dvvideo", (720, 576)),
}
PIXEL_FORMATS = {"gif": "rgb8", "mjpeg": "yuvj420p", "jpeg2000": "rgb24"}
FRAMES = 10


def _write(path, muxer, encoder, size=(64, 48)):
    width, height = size
    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=25, options={"x265-params": "log-level=error"})
        stream.width, stream.height = width, height
        stream.pix_fmt = PIXEL_FORMATS.get(encoder, "yuv420p")
        for i in range(FRAMES):
            rgb = np.full((height, width, 3), 20 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_every_extension_has_a_writer():
    assert set(WRITERS) == VIDEO_EXTENSIONS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("extensions")
    for extension, (muxer, encoder, *size) in WRITERS.items():
        _write(root / f"clip{extension}", muxer, encoder, *size)
    for name in ("notes.txt", "README.nfo", "subtitles.srt", "cover.png", "song.mp3"):
        (root / name).write_bytes(b"not scanned")
    return root


def test_the_scan_finds_every_video_extension_and_nothing_else(folder):
    found = find_videos([folder])
    assert sorted(p.suffix for p in found) == sorted(VIDEO_EXTENSIONS)


@pytest.mark.parametrize("extension", sorted(WRITERS))
def test_each_extension_is_read_by_the_demuxer_it_is_listed_under(folder, extension):
    path = folder / f"clip{extension}"
    with av.open(str(path)) as container:
        demuxer = container.format.name
    assert extension in VIDEO_DEMUXERS[demuxer]
    with open_video(path, cache_dir=False) as video:
        assert video.num_frames == FRAMES
        levels = video.get_frames(np.arange(FRAMES)).data.float().mean(dim=(1, 2, 3)).numpy()
        assert np.all(np.diff(levels) > 10)  # ten frames in order, each lighter than the one before


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line (the ground truth)")
def test_every_backend_gives_ffmpegs_pictures_of_every_container_or_refuses_it_with_a_reason(folder):
    verdicts = [v for extension in sorted(WRITERS) for v in check_file(folder / f"clip{extension}", INSTALLED)]
    wrong = [f"{v.path} {v.backend}: {v.detail}" for v in verdicts if v.status == "wrong"]
    assert not wrong, wrong
    assert all(v.detail for v in verdicts if v.status == "refused")
    assert all(v.status == "exact" for v in verdicts if v.backend == "pyav")
