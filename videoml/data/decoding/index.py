"""The frame index of a video file: what frames exist, in presentation order, and where the key frames are.

Headers lie (frame counts that include frames that never decode, nominal rates on variable-rate files), so the index
is built from the packets themselves, in one scan of the file that demuxes but does not decode. Frame ``i`` of a
file is the ``i``-th packet in presentation-time order; every backend maps its own numbering onto this one, so the
same index means the same picture everywhere.

Indexes are cached (``$VIDEOML_CACHE_DIR``, else ``$XDG_CACHE_HOME/videoml``, else ``~/.cache/videoml``) under a key
of the file's real path, and rebuilt when the file's size or modification time changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from videoml.errors import VideoDecodeError

_VERSION = 1  # bump when the index's content or meaning changes; older cache entries are then rebuilt


@dataclass(frozen=True, eq=False)
class FrameIndex:
    """Frames of a video stream in presentation order."""

    pts: np.ndarray  # int64, presentation time stamps in ``time_base`` units, strictly increasing
    keyframe: np.ndarray  # bool, True where the frame is a key frame (a place to start decoding)
    time_base: Fraction
    width: int
    height: int
    codec: str
    stream_index: int = 0
    reordered: bool = False  # decoding order differs from presentation order (B-frames)
    header: dict = field(default_factory=dict)  # what the container claims: frames, fps, duration (hints only)

    def __post_init__(self):
        # key_before[i]: the key frame to start decoding from to reach frame i
        positions = np.where(self.keyframe, np.arange(len(self.pts)), 0)
        object.__setattr__(self, "key_before", np.maximum.accumulate(positions))

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation times in seconds (float64), as the container states them (the first may be non-zero)."""
        return self.pts * float(self.time_base)

    @property
    def fps(self) -> float:
        """Mean frame rate measured from the time stamps (the header's rate is only a hint)."""
        if self.num_frames < 2:
            return float(self.header.get("fps") or 0.0)
        return (self.num_frames - 1) / float((int(self.pts[-1]) - int(self.pts[0])) * self.time_base)

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return self.num_frames / self.fps if self.fps else 0.0

    @property
    def keyframes(self) -> np.ndarray:
        return np.flatnonzero(self.keyframe)

    def to_arrays(self) -> dict:
        meta = dict(time_base=[self.time_base.numerator, self.time_base.denominator], width=self.width,
                    height=self.height, codec=self.codec, stream_index=self.stream_index, reordered=self.reordered,
                    header=self.header)
        return {"pts": self.pts, "keyframe": self.keyframe, "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays) -> "FrameIndex":
        meta = json.loads(str(arrays["meta"]))
        return cls(pts=arrays["pts"], keyframe=arrays["keyframe"], time_base=Fraction(*meta["time_base"]),
                   width=meta["width"], height=meta["height"], codec=meta["codec"],
                   stream_index=meta["stream_index"], reordered=meta["reordered"], header=meta["header"])


def check_file(path: str | os.PathLike) -> os.stat_result:
    """The file's stat, or a VideoDecodeError that says why it cannot be a video."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoDecodeError(path, "no such file") from None
    except OSError as e:
        raise VideoDecodeError(path, e.strerror or str(e)) from None
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "not a regular file")
    if st.st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    return st


def open_container(path: str | os.PathLike):
    """``av.open`` with FFmpeg's errors turned into a VideoDecodeError naming the file."""
    import av

    check_file(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"not a readable video ({_ffmpeg_reason(e)})") from None


def _ffmpeg_reason(error) -> str:
    return getattr(error, "strerror", None) or str(error)


def video_stream(container, path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoDecodeError(path, f"no video stream (has: {', '.join(kinds)})")
    return container.streams.video[0]


def build_index(path: str | os.PathLike) -> FrameIndex:
    """Scan the packets of the first video stream (no decoding) and index its frames."""
    import av

    with open_container(path) as container:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        if ctx.codec is None:
            raise VideoDecodeError(path, "video codec not supported by this FFmpeg")
        header = {
            "frames": int(stream.frames or 0),
            "fps": float(stream.average_rate or stream.guessed_rate or 0),
            "duration": float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None,
            "start_time": float(stream.start_time * stream.time_base)
            if stream.start_time is not None and stream.time_base else None,
        }
        pts, keys = [], []
        seen_key = False
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                stamp = packet.pts if packet.pts is not None else packet.dts
                # Packets before the first key frame reference pictures that are not in the file: they never decode.
                seen_key = seen_key or packet.is_keyframe
                if stamp is None or not seen_key:
                    continue
                pts.append(stamp)
                keys.append(packet.is_keyframe)
        except av.FFmpegError:
            pass  # truncated or corrupt past this point: the index holds the packets before it
        if not pts:
            raise VideoDecodeError(path, "no decodable video frames (no key frame found)")
        pts_arr = np.asarray(pts, dtype=np.int64)
        order = np.argsort(pts_arr, kind="stable")
        reordered = bool(np.any(np.diff(pts_arr) < 0))
        pts_arr, key_arr = pts_arr[order], np.asarray(keys, dtype=bool)[order]
        unique = np.concatenate([[True], np.diff(pts_arr) > 0])  # a repeated time stamp is one picture
        return FrameIndex(pts=pts_arr[unique], keyframe=key_arr[unique], time_base=Fraction(stream.time_base),
                          width=ctx.width, height=ctx.height, codec=ctx.codec.name,
                          stream_index=stream.index, reordered=reordered, header=header)


# np.load parses .npy headers with ast.literal_eval, and CPython 3.11 before 3.11.8 can fail two threads doing that
# at once ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905). Loaders that read clips
# in threads (tf.data) take turns here; reading an index entry takes well under a millisecond.
_NPY_HEADERS = threading.Lock()


def default_cache_dir() -> Path:
    if os.environ.get("VIDEOML_CACHE_DIR"):
        return Path(os.environ["VIDEOML_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "videoml"


def load_index(path: str | os.PathLike, cache_dir: str | os.PathLike | None | bool = None) -> FrameIndex:
    """The file's index, from the cache when it is still valid. ``cache_dir=False`` turns the cache off."""
    st = check_file(path)
    if cache_dir is False:
        return build_index(path)
    real = os.path.realpath(path)
    stamp = {"version": _VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    entry = Path(cache_dir or default_cache_dir()) / "index" / (hashlib.sha1(real.encode()).hexdigest() + ".npz")
    try:
        with _NPY_HEADERS, np.load(entry) as arrays:
            if json.loads(str(arrays["stamp"])) == stamp:
                return FrameIndex.from_arrays(arrays)
    except (OSError, ValueError, KeyError):
        pass  # no entry, or a stale or damaged one: rebuild
    index = build_index(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, stamp=np.array(json.dumps(stamp)), **index.to_arrays())
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only cache only costs time
    return index
