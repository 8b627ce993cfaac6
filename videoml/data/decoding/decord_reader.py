"""The decord backend (optional: ``pip install 'videoml[decord]'``).

decord numbers frames its own way and its time stamps are unreliable on some containers (AVI gives none), so its
indices are mapped onto our :class:`FrameIndex` by presentation time, falling back to order when decord has no usable
time stamps and the file has no B-frames. Files that decord was seen to decode wrongly (open GOPs, MPEG program and
transport streams, files whose time stamps do not give FFmpeg's order, AVI with B-frames, where it has no time stamps)
are refused with a VideoDecodeError, when opened, instead of returning wrong pictures. Results are converted from
whatever array type decord returns: importing PyTorchVideo's decord decoder switches decord's global bridge to torch,
and this reader must not depend on it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

import decord
import numpy as np
import torch

from videoml.data.decoding.index import VideoBytes
from videoml.data.decoding.reader import VideoReader, log, resize_frames
from videoml.errors import VideoDecodeError, first_line

_STDERR = threading.Lock()
# decord 3 (decord2, the fork with aarch64 wheels) fails HEVC with B-frames, where frames after the first GOP do not
# decode (0.6.0 reads them)
DECORD3 = int(decord.__version__.split(".")[0]) >= 3
# Every picture of some widths fails decord's conversion into its array ("DECORDArrayCopyFromTo: The size must
# exactly match"; seen: 8, 12, 16, 24, 48, 72 pixels with 0.6.0, and 32, 96, 144 too with 3.4), the source's own or
# the size asked for. For a size asked for, the reader decodes as stored and scales with torch instead.
_WIDTH_BUG = "DECORDArrayCopyFromTo"
# FFmpeg's own log lines, from the FFmpeg decord brings ("co located POCs unavailable"): under videoml -v only
decord.logging.set_level(decord.logging.WARNING if os.environ.get("VIDEOML_DEBUG") else decord.logging.QUIET)


@contextlib.contextmanager
def _library_output():
    """decord's C++ code writes its warnings straight to the process's standard error (dozens of "Failed to seek file
    to position: 0" on some files): around its calls that do (opening a file) they go to the log at debug level,
    unless ``VIDEOML_DEBUG`` is set (``videoml -v``), which leaves them on standard error."""
    if os.environ.get("VIDEOML_DEBUG"):
        yield
        return
    with _STDERR, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                log.debug("decord: %s", line)


def _reason(error: Exception) -> str:
    """decord's message without its time, source location and the file's path."""
    text = re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", first_line(error))
    return re.sub(r"^\[[^\]]*\] ", "", text).rstrip(".")


def _as_numpy(batch) -> np.ndarray:
    return batch.numpy() if hasattr(batch, "numpy") else batch.asnumpy()


class DecordReader(VideoReader):
    backend = "decord"

    def __init__(self, path, index, threads=1, bad_frames="error", autorotate=True):
        super().__init__(path, index, threads, bad_frames, autorotate)
        if index.rotation:
            # decord turns pictures by the display matrix but scales them (width=, height=) as stored.
            raise VideoDecodeError(self.path, f"decord cannot read pictures turned by a display matrix "
                                              f"({index.rotation} degrees); use the pyav backend")
        if index.numbering != "packets":
            # decord numbers frames from its own packet scan; where that scan was not verified to give FFmpeg's
            # pictures (MPEG-PS, Ogg, packed B-frames, ...), decord was seen returning other pictures.
            raise VideoDecodeError(self.path, "the file's time stamps do not give FFmpeg's frame order "
                                              f"({'; '.join(index.notes)}), which decord relies on; use the pyav "
                                              "backend")
        if index.header.get("open_gop"):
            # Seen: decord returns the frame two after the one asked for on open-GOP H.264 after a seek, silently.
            raise VideoDecodeError(self.path, "decord seeks open-GOP files wrongly (other frames than asked for); "
                                              "use the pyav backend")
        if index.bit_depth > 8:
            raise VideoDecodeError(self.path, f"decord converts {index.header['pix_fmt']} pictures differently from "
                                              "FFmpeg (mean difference > 2 levels); use the pyav backend")
        if DECORD3 and index.codec == "hevc" and index.reordered:
            raise VideoDecodeError(self.path, f"decord {decord.__version__} loses the frames of HEVC with B-frames "
                                              "after the first GOP; use the pyav backend")
        if index.mpeg_stream:
            # Seen with FFmpeg's own MPEG-1/2 program and transport streams: the last frames of a .vob, every frame of
            # a .ts, other pictures than FFmpeg's
            raise VideoDecodeError(self.path, "decord returns other pictures than FFmpeg's in MPEG program and "
                                              "transport streams; use the pyav backend")
        self._readers: dict[tuple[int, int] | None, decord.VideoReader] = {}
        self._unscalable: set[tuple[int, int]] = set()  # output sizes decord's conversion fails (see _WIDTH_BUG)
        self._map = self._map_frames(self._reader(None))

    def _reader(self, size) -> decord.VideoReader:
        """One decord reader per output size: decord scales at open time only."""
        if size not in self._readers:
            w, h = size if size else (-1, -1)
            try:
                with _library_output():
                    source = self.source.stream() if isinstance(self.source, VideoBytes) else self.path
                    reader = decord.VideoReader(source, ctx=decord.cpu(0), width=w, height=h,
                                                num_threads=self.threads)
            except decord.DECORDError as e:
                reason = f"decord cannot open it ({_reason(e)}); use the pyav backend"
                raise VideoDecodeError(self.path, reason) from None
            self._readers[size] = reader
        return self._readers[size]

    def _map_frames(self, reader) -> np.ndarray:
        """decord's frame number for each of our frames (-1 where decord has none)."""
        n = len(reader)
        stamps = self.index.pts * float(self.index.time_base)  # each frame's own time stamp, in FFmpeg's order
        ours = stamps - stamps.min()
        theirs = reader.get_frame_timestamp(np.arange(n))[:, 0] if n else np.empty(0)
        if n and np.all(theirs >= 0) and np.all(np.diff(theirs) > 0):
            tolerance = 0.5 / max(self.fps, 1e-6)
            nearest = np.clip(np.searchsorted(theirs, ours), 1, max(n - 1, 1))
            left = nearest - 1
            pick = np.where(np.abs(theirs[left] - ours) <= np.abs(theirs[np.minimum(nearest, n - 1)] - ours),
                            left, np.minimum(nearest, n - 1))
            return np.where(np.abs(theirs[pick] - ours) <= tolerance, pick, -1)
        if n == self.num_frames and not self.index.reordered:
            return np.arange(n)  # no time stamps, but no reordering either: decoding order is presentation order
        # Seen with B-frames in AVI: decord returns some frames twice and skips others, even decoding in order.
        raise VideoDecodeError(self.path, f"decord gives no usable time stamps for this file ({n} frames, "
                                          f"{'with' if self.index.reordered else 'without'} B-frames), so its frames "
                                          "cannot be matched to the index; use the pyav backend")

    def _decode(self, wanted, size):
        if size in self._unscalable:  # decoded as stored, scaled here
            decoded = self._decode(wanted, None)
            if not decoded:
                return {}
            scaled = resize_frames(torch.from_numpy(np.stack(list(decoded.values()))), size).numpy()
            return dict(zip(decoded, scaled))
        theirs = self._map[wanted]
        present = theirs >= 0
        if not present.any():
            return {}
        reader = self._reader(size)
        try:
            batch = _as_numpy(reader.get_batch(theirs[present].tolist()))
            return {int(i): frame for i, frame in zip(wanted[present], batch)}
        except decord.DECORDError as e:  # decord fails a whole batch for one bad frame: find which, frame by frame
            if _WIDTH_BUG in str(e):
                return self._unscalable_width(wanted, size)
        out = {}
        for i, j in zip(wanted[present], theirs[present]):
            try:
                out[int(i)] = _as_numpy(reader.get_batch([int(j)]))[0]
            except decord.DECORDError:
                pass
        return out

    def _unscalable_width(self, wanted, size):
        """decord's conversion fails every picture of this width: as stored and scaled here, or, when the stored
        width is the one it fails, a refusal."""
        if size is None:
            raise VideoDecodeError(self.path, f"decord {decord.__version__} cannot convert pictures "
                                              f"{self.index.width} pixels wide (it fails every picture of some "
                                              "widths); use the pyav backend")
        self._unscalable.add(size)
        self._readers.pop(size, None)
        return self._decode(wanted, size)

    def close(self):
        self._readers.clear()
