"""The frame index of a video file: what frames exist, in FFmpeg's decoder order, and where the key frames are.

Frame ``i`` of a file is the ``i``-th picture FFmpeg's decoder outputs when decoding the file from its start: what
``ffmpeg -i FILE -fps_mode passthrough`` writes. Headers lie (frame counts that include frames that never decode,
nominal rates on variable-rate files), and so do container time stamps on some real files, so the index is built
from the packets, verified by decoding, and rebuilt by a decode pass when they disagree (see
:mod:`videoml.data.decoding.scan`). Every backend maps its own numbering onto this one, so the same index means the
same picture everywhere.

Indexes are cached (``$VIDEOML_CACHE_DIR``, else ``$XDG_CACHE_HOME/videoml``, else ``~/.cache/videoml``) under a key
of the file's real path, and rebuilt when the file's size, modification time, inode or status-change time differ
(replacing a file, even by one of the same size and modification time, changes its inode or ctime).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Union

import numpy as np

from videoml.data.decoding import scan
from videoml.data.decoding.lru import LRU
from videoml.errors import VideoDecodeError
from videoml.fileio import default_cache_dir

_VERSION = 5  # bump when the index's content or meaning changes; older cache entries are then rebuilt

# How frame numbers were established (FrameIndex.numbering):
#   "packets":    the packets' time stamps in presentation order, verified against the decoder (most files)
#   "decoded":    a decode pass; frames are identified by the time stamps the decoder gives them
#   "sequential": a decode pass; the decoded pictures have no distinct time stamps, so frames are identified by
#                 their count from the start, and reading frame i decodes the file from its start
NUMBERINGS = ("packets", "decoded", "sequential")

# Codecs of FFmpeg's text demuxers (tty: .txt .nfo .asc .diz ...; bintext; xbin; idf): they draw any text file as
# 640x400 pictures of its characters, so a stray notes.txt would otherwise open as a 25 fps "video".
TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
# Demuxers of formats that animate pictures: one picture in such a file is a still image, not a video.
ANIMATED_IMAGE_FORMATS = frozenset({"gif", "apng", "webp_pipe"})


@dataclass(frozen=True, eq=False)
class FrameIndex:
    """Frames of a video stream in the decoder's output order (presentation order)."""

    pts: np.ndarray  # int64, per frame the time stamp the decoder gives it, in ``time_base`` units (distinct)
    keyframe: np.ndarray  # bool, True where the frame is a key frame (a place to start decoding)
    time_base: Fraction
    width: int  # as stored; see display_size for the size after the display matrix's rotation
    height: int
    codec: str
    stream_index: int = 0
    reordered: bool = False  # decoding order differs from presentation order (B-frames)
    header: dict = field(default_factory=dict)  # what the container claims: frames, fps, duration (hints only)
    numbering: str = "packets"  # see NUMBERINGS
    rotation: int = 0  # display matrix rotation, degrees counter-clockwise (0, 90, 180, 270)
    notes: tuple = ()  # why the packets could not be trusted, for `videoml data check`

    def __post_init__(self):
        # key_before[i]: the key frame to start decoding from to reach frame i
        positions = np.where(self.keyframe, np.arange(len(self.pts)), 0)
        object.__setattr__(self, "key_before", np.maximum.accumulate(positions) if len(positions) else positions)
        object.__setattr__(self, "_by_pts", np.argsort(self.pts, kind="stable"))

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def random_access(self) -> bool:
        """Whether frames can be reached by seeking (else by decoding from the start)."""
        return self.numbering != "sequential"

    def position(self, pts: int | None) -> int | None:
        """The frame whose time stamp is ``pts``, or None."""
        if pts is None or not self.random_access:
            return None
        k = int(np.searchsorted(self.pts, pts, sorter=self._by_pts))
        if k < self.num_frames and self.pts[self._by_pts[k]] == pts:
            return int(self._by_pts[k])
        return None

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation times in seconds (float64, increasing; the first may be non-zero).

        The time stamps in order: where a decoder hands its pictures out with time stamps in another order (packed
        B-frames), the pictures are still shown in the order it hands them out.
        """
        return np.sort(self.pts) * float(self.time_base)

    @property
    def fps(self) -> float:
        """Mean frame rate measured from the time stamps (the header's rate is only a hint)."""
        span = (int(self.pts.max()) - int(self.pts.min())) * self.time_base if self.num_frames >= 2 else 0
        return (self.num_frames - 1) / float(span) if span else float(self.header.get("fps") or 0.0)

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return self.num_frames / self.fps if self.fps else 0.0

    @property
    def needs_primer(self) -> bool:
        """Whether pictures after the first key frame come out as FFmpeg decodes them from the start only once the
        decoder has seen the stream's first packet. x264 before build 151 coded lossless 4:4:4 intra blocks
        otherwise than the standard says, and FFmpeg's H.264 decoder follows the old way when x264's version SEI
        (in the first packet only) names such a build (libavcodec/h264_mb.c); a decoder that starts at a later key
        frame never sees it and returns other pictures, PyAV, torchcodec and decord alike (imageio's
        cockatoo.mp4, in the corpus)."""
        build = self.header.get("x264_build")
        return self.codec == "h264" and build is not None and build < 151

    @property
    def mpeg_stream(self) -> bool:
        """Whether the file is an MPEG program, transport or elementary stream (.mpg .vob .ts .m2ts .m1v ...):
        containers without an index of their frames, where decord and torchcodec were seen returning other
        pictures than FFmpeg's."""
        return self.header.get("format") in ("mpeg", "mpegts", "mpegvideo")

    @property
    def still_image(self) -> str | None:
        """The image format when the file is a still image (PNG, JPEG, a one-picture GIF, ...), else None. FFmpeg
        reads an image as a one-frame video; :func:`~videoml.data.decoding.open_video` refuses it unless asked."""
        name = self.header.get("format") or ""
        if name in ANIMATED_IMAGE_FORMATS and self.num_frames > 1:
            return None
        if name == "image2":
            return self.codec
        return name.removesuffix("_pipe") if name.endswith("_pipe") or name in ANIMATED_IMAGE_FORMATS else None

    @property
    def keyframes(self) -> np.ndarray:
        return np.flatnonzero(self.keyframe)

    @property
    def bit_depth(self) -> int:
        """Bits per colour component of the stored pictures (8 when the pixel format is unknown)."""
        import av

        try:
            return max(c.bits for c in av.VideoFormat(self.header["pix_fmt"]).components)
        except (KeyError, TypeError, ValueError):
            return 8

    def display_size(self, autorotate: bool = True) -> tuple[int, int]:
        """(width, height) of the pictures as shown: swapped when the display matrix turns them by 90 degrees."""
        turned = autorotate and self.rotation in (90, 270)
        return (self.height, self.width) if turned else (self.width, self.height)

    def to_arrays(self) -> dict:
        meta = dict(time_base=[self.time_base.numerator, self.time_base.denominator], width=self.width,
                    height=self.height, codec=self.codec, stream_index=self.stream_index, reordered=self.reordered,
                    header=self.header, numbering=self.numbering, rotation=self.rotation, notes=list(self.notes))
        return {"pts": self.pts, "keyframe": self.keyframe, "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays) -> "FrameIndex":
        meta = json.loads(str(arrays["meta"]))
        return cls(pts=arrays["pts"], keyframe=arrays["keyframe"], time_base=Fraction(*meta.pop("time_base")),
                   notes=tuple(meta.pop("notes")), **meta)


@dataclass(frozen=True)
class VideoBytes:
    """A video held in memory (a sample read from a shard) rather than a file: :func:`videoml.open_video` reads it
    as it reads the file it was, with the same frame numbering. ``name`` says where it came from (shard and key) in
    every message about it, as a path does for a file."""

    name: str
    data: bytes = field(repr=False)

    def __str__(self) -> str:
        return self.name

    def stream(self) -> io.BytesIO:
        """A file object over the bytes, for the decoders that read one (PyAV, decord)."""
        return io.BytesIO(self.data)


Source = Union[str, os.PathLike, VideoBytes]  # what a video is opened from


def check_file(path: str | os.PathLike) -> os.stat_result:
    """The file's stat, or a VideoDecodeError that says why it cannot be a video."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoDecodeError(path, "no such file") from None
    except OSError as e:
        raise VideoDecodeError(path, e.strerror or str(e)) from None
    if stat.S_ISDIR(st.st_mode):
        try:
            os.scandir(path).close()
        except OSError as e:  # one that find_videos could not walk into
            raise VideoDecodeError(path, f"a folder whose files cannot be listed ({e.strerror})") from None
        raise VideoDecodeError(path, "a folder, not a video")
    if not stat.S_ISREG(st.st_mode):
        raise VideoDecodeError(path, "not a regular file")
    if st.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    return st


def open_container(path: Source):
    """``av.open`` with FFmpeg's errors turned into a VideoDecodeError naming the file (or the bytes' name)."""
    import av

    if isinstance(path, VideoBytes):
        if not path.data:
            raise VideoDecodeError(path, "empty (0 bytes)")
    else:
        check_file(path)
    try:
        return av.open(path.stream() if isinstance(path, VideoBytes) else str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"not a readable video ({_ffmpeg_reason(e)})") from None


def _ffmpeg_reason(error) -> str:
    return getattr(error, "strerror", None) or str(error)


def video_stream(container, path):
    """The first video stream that is not an audio file's cover art (a picture FFmpeg lists as a video stream)."""
    import av

    cover = av.stream.Disposition.attached_pic
    streams = [s for s in container.streams.video if cover not in s.disposition]
    if not streams:
        kinds = sorted({"cover art" if s.type == "video" else s.type for s in container.streams}) or ["no streams"]
        raise VideoDecodeError(path, f"no video stream (has: {', '.join(kinds)})")
    return streams[0]


def _header(stream) -> dict:
    return {
        "frames": int(stream.frames or 0),
        "fps": float(stream.average_rate or stream.guessed_rate or 0),
        "duration": float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None,
        "start_time": float(stream.start_time * stream.time_base)
        if stream.start_time is not None and stream.time_base else None,
    }


def _number_frames(path, codec: str, packets: scan.Packets) -> tuple[scan.Numbering, scan.Decoded]:
    """The packet scan's numbering when the decoder confirms it, else a decode pass's (see :mod:`scan`)."""
    notes = scan.untrusted_reasons(packets, codec)
    if not notes:
        numbering = scan.numbering_from_packets(packets)
        with open_container(path) as container:
            head = scan.verify(container, video_stream(container, path), numbering)
        if head is not None:
            return numbering, head
        notes = ["container time stamps disagree with the decoder's output"]
    with open_container(path) as container:
        return scan.decode_pass(container, video_stream(container, path), notes, stamped=not packets.invented_by)


def build_index(path: Source) -> FrameIndex:
    """Number the frames of the first video stream as FFmpeg's decoder outputs them (see :mod:`scan`)."""
    with open_container(path) as container:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        if ctx is None or ctx.codec is None:
            raise VideoDecodeError(path, "video codec not supported by this FFmpeg")
        if ctx.codec.name in TEXT_CODECS:
            raise VideoDecodeError(path, f"a text file (FFmpeg's {container.format.name} demuxer draws text as "
                                         "pictures), not a video")
        header, codec, time_base = _header(stream), ctx.codec.name, stream.time_base
        header["pix_fmt"] = ctx.format.name if ctx.format else None
        header["format"] = container.format.name
        width, height, stream_index = ctx.width, ctx.height, stream.index
        packets = scan.scan_packets(container, stream)
    numbering, first = _number_frames(path, codec, packets)
    if not len(numbering.pts):
        raise VideoDecodeError(path, "no decodable video frames")
    if numbering.rule == "sequential":  # no time stamps to speak of: the header's rate gives the frames' times
        time_base = Fraction(1, round(header["fps"])) if header["fps"] >= 1 else Fraction(1, 25)
    notes = list(numbering.notes)
    header["open_gop"], header["x264_build"] = packets.open_gop, packets.x264_build
    header["first_size"] = list(first.size) if first.size else None  # what FFmpeg scales later pictures to
    if packets.discarded:
        notes.append(f"edit list: {packets.discarded} packet(s) it hides are not frames")
    return FrameIndex(pts=numbering.pts, keyframe=numbering.keyframe, time_base=Fraction(time_base), width=width,
                      height=height, codec=codec, stream_index=stream_index, reordered=packets.reordered,
                      header=header, numbering=numbering.rule, rotation=first.rotation, notes=tuple(notes))


# np.load parses .npy headers with ast.literal_eval, and CPython 3.11 before 3.11.8 can fail two threads doing that
# at once ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905). Loaders that read clips
# in threads (tf.data) take turns here; reading an index entry takes well under a millisecond.
_NPY_HEADERS = threading.Lock()


# The indices this process used last: a training worker opens the same videos every epoch, and reading an entry back
# costs more than opening the video. Up to a million frames in all, some 30 MB.
_RECENT: LRU[FrameIndex] = LRU(1_000_000, weight=lambda index: index.num_frames)


def load_index(path: Source, cache_dir: str | os.PathLike | None | bool = None) -> FrameIndex:
    """The file's index, from the cache when it is still valid. ``cache_dir=False`` turns the cache off. (A video
    in memory has no cache entry: a shard keeps its samples' indices beside them.)"""
    if isinstance(path, VideoBytes):
        return build_index(path)
    st = check_file(path)
    if cache_dir is False:
        return build_index(path)
    real = os.path.realpath(path)
    stamp = {"version": _VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
             "inode": st.st_ino, "device": st.st_dev}
    entry = Path(cache_dir or default_cache_dir()) / "index" / (hashlib.sha1(os.fsencode(real)).hexdigest() + ".npz")
    key = (str(entry), *stamp.values())
    recent = _RECENT.get(key)
    if recent is not None:
        return recent
    try:
        with _NPY_HEADERS, np.load(entry) as arrays:
            if json.loads(str(arrays["stamp"])) == stamp:
                return _RECENT.put(key, FrameIndex.from_arrays(arrays))
    except (OSError, ValueError, KeyError):
        pass  # no entry, or a stale or damaged one: rebuild
    index = _RECENT.put(key, build_index(path))
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, stamp=np.array(json.dumps(stamp)), **index.to_arrays())
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only cache only costs time
    return index
