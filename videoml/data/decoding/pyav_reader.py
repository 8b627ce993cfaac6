"""The PyAV backend: FFmpeg through PyAV, with keyframe-aware planning.

PyTorchVideo's ``EncodedVideo`` (PyAV) decodes every frame of a time window and keeps them all as RGB; this reader
decodes only from the key frame before each needed frame, continues forward instead of seeking when no key frame
lies in between, stops after the last needed frame, and converts (and scales) only the frames it returns.
"""

from __future__ import annotations

import itertools

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from videoml.data.decoding.index import open_container
from videoml.data.decoding.reader import VideoReader


class PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path, index, threads=1, bad_frames="error"):
        super().__init__(path, index, threads, bad_frames)
        self.decode_errors = 0  # packets the decoder rejected (corrupt data)
        # One converter for the reader's life: VideoFrame.to_ndarray(format=...) sets up a new swscale context on
        # most calls, which costs several times the conversion itself.
        self._reformatter = VideoReformatter()
        self._container = None
        self._open()

    def _open(self) -> None:
        """(Re)open the file, positioned before its first frame."""
        if self._container is not None:
            self._container.close()
        self._container = open_container(self.path)
        self._stream = self._container.streams[self.index.stream_index]
        ctx = self._stream.codec_context
        ctx.thread_count = self.threads  # explicit: DataLoader workers must not each start one thread per core
        ctx.thread_type = "AUTO" if self.threads != 1 else "SLICE"
        self._frames = self._decoded()  # decoded frames from the current position on
        self._pos = -1  # index of the last frame decoded; the next to come is _pos + 1
        self._sought = 0  # key frame of the last seek: if it landed early, decoding on is all a new seek could do
        self._wanted_pts: set[int] = set()  # time stamps of the frames the current call returns
        self._skipped_pts: set[int] = set()  # time stamps of packets not decoded since the last seek

    def _decoded(self):
        ctx = self._stream.codec_context
        ctx.skip_frame, skipping = "DEFAULT", False  # a generator left behind by a seek may have left it skipping
        self._skipped_pts = set()
        for packet in self._container.demux(self._stream):
            # A frame nobody asked for that no other frame refers to (most B-frames) need not be decoded at all.
            skip = packet.pts is not None and packet.pts not in self._wanted_pts
            if skip:
                self._skipped_pts.add(packet.pts)  # if a later call wants it, it must seek back: see _decode
            if skip != skipping:
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            try:
                frames = self._stream.decode(packet)  # the final empty packet drains the decoder
            except av.FFmpegError:
                self.decode_errors += 1  # corrupt packet: its frame is missing, later ones may still decode
                continue
            yield from frames

    def _frame_index(self, frame) -> int | None:
        if frame.pts is None:
            return None
        i = int(np.searchsorted(self.index.pts, frame.pts))
        return i if i < self.num_frames and self.index.pts[i] == frame.pts else None

    def _seek(self, target: int) -> None:
        """Restart decoding at or before frame ``target``, from its key frame.

        Containers seek by different clocks (MP4 by decoding time plus a shift, others by presentation time), so a
        seek can land after the wanted frame; then it steps back one key frame at a time, and at the first one it
        reopens the file, which always starts at the beginning.
        """
        key_before, pts = self.index.key_before, self.index.pts
        key = int(key_before[target])
        while True:
            # Aim half a frame past the key frame: demuxers that seek by decoding time plus a fixed shift (MP4 with
            # B-frames and variable rate) would otherwise land one key frame early.
            aim = (int(pts[key]) + int(pts[key + 1])) // 2 if key + 1 < len(pts) else int(pts[key])
            self._container.seek(aim, stream=self._stream, backward=True, any_frame=False)
            frames = self._decoded()
            i = None
            for first in frames:
                i = self._frame_index(first)
                if i is not None:
                    break
            if i is not None and i <= target:
                self._frames = itertools.chain([first], frames)
                self._pos, self._sought = i - 1, key
                return
            if key == 0:
                self._open()
                return
            key = int(key_before[key - 1])

    def _decode(self, wanted, size):
        out = {}
        self._wanted_pts = set(self.index.pts[wanted].tolist())
        if self._wanted_pts & self._skipped_pts:
            self._pos = self.num_frames  # the decoder ran ahead past frames now wanted, skipping them: start over
        key_before = self.index.key_before
        w, h = size if size else (None, None)
        j = 0
        while j < len(wanted):
            f = int(wanted[j])
            if f <= self._pos or key_before[f] > max(self._pos + 1, self._sought):
                self._seek(f)
            for frame in self._frames:
                i = self._frame_index(frame)
                if i is None or i <= self._pos:
                    continue
                self._pos = i
                while j < len(wanted) and wanted[j] < i:
                    j += 1  # passed a wanted frame that never came out of the decoder: it stays missing
                if j < len(wanted) and wanted[j] == i:
                    out[i] = self._reformatter.reformat(frame, format="rgb24", width=w, height=h,
                                                        interpolation="BILINEAR").to_ndarray()
                    j += 1
                if j == len(wanted) or key_before[wanted[j]] > max(i + 1, self._sought):
                    break  # done, or the next wanted frame is cheaper to reach by a (new) seek
            else:
                self._pos = self.num_frames  # end of stream: what is still wanted did not decode
                break
        return out

    def close(self):
        self._container.close()
