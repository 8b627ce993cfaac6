"""The PyAV backend: FFmpeg through PyAV, with keyframe-aware planning.

PyTorchVideo's ``EncodedVideo`` (PyAV) decodes every frame of a time window and keeps them all as RGB; this reader
decodes only from the key frame before each needed frame, continues forward instead of seeking when no key frame
lies in between, stops after the last needed frame, and converts (and scales) only the frames it returns.

Decoded frames are recognised by their time stamps (:meth:`FrameIndex.position`), or, on files whose decoded
pictures have no distinct time stamps (``numbering == "sequential"``), by counting them from the start of the file.
"""

from __future__ import annotations

import itertools

import av
import numpy as np

from videoml.data.decoding.convert import RGBConverter
from videoml.data.decoding.index import open_container
from videoml.data.decoding.scan import demuxed
from videoml.data.decoding.reader import VideoReader
from videoml.errors import VideoDecodeError


class PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path, index, threads=1, bad_frames="error", autorotate=True):
        super().__init__(path, index, threads, bad_frames, autorotate)
        self.decode_errors = 0  # packets the decoder rejected (corrupt data)
        first = index.header.get("first_size")
        self._convert = RGBConverter(index.rotation if autorotate else 0, stored=tuple(first) if first else None)
        # Skipping undecoded B-frames relies on packets and pictures carrying the same time stamps: only where the
        # packet scan was verified to number the frames.
        self._may_skip = index.numbering == "packets"
        self._wanted_pts: set[int] = set()  # time stamps of the frames the current call returns
        self._skipped_pts: set[int] = set()  # time stamps of packets not decoded since the last seek
        self._container = None
        self._seekable = True  # until the demuxer refuses a seek
        self._open()

    @property
    def picture_sizes(self) -> set[tuple[int, int]]:
        """(width, height) of the pictures decoded so far, as stored: more than one where the stream changes size
        midway (each is returned at the first size, as FFmpeg's command line scales them)."""
        return set(self._convert.sizes)

    def _open(self) -> None:
        """(Re)open the file, positioned before its first frame."""
        if self._container is not None:
            self._container.close()
        self._container = open_container(self.source)
        self._stream = self._container.streams[self.index.stream_index]
        ctx = self._stream.codec_context
        ctx.thread_count = self.threads  # explicit: DataLoader workers must not each start one thread per core
        ctx.thread_type = "AUTO" if self.threads != 1 else "SLICE"
        self._count = -1  # pictures decoded since the start of the file (frame identity on sequential files)
        self._frames = self._decoded()  # (index, frame) from the current position on
        self._pos = -1  # index of the last frame decoded; the next to come is _pos + 1
        self._sought = 0  # key frame of the last seek: if it landed early, decoding on is all a new seek could do

    def _decoded(self):
        """(frame index or None, frame) for each picture decoded from the current position on."""
        ctx = self._stream.codec_context
        ctx.skip_frame, skipping = "DEFAULT", False  # a generator left behind by a seek may have left it skipping
        self._skipped_pts = set()
        for packet in demuxed(self._container, self._stream):  # a demuxer error ends the stream there
            # A frame nobody asked for that no other frame refers to (most B-frames) need not be decoded at all.
            skip = self._may_skip and packet.pts is not None and packet.pts not in self._wanted_pts
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
            for frame in frames:
                self._count += 1
                yield (self.index.position(frame.pts) if self.index.random_access else self._count), frame

    def _seek(self, target: int) -> None:
        """Restart decoding at or before frame ``target``, from its key frame.

        Containers seek by different clocks (MP4 by decoding time plus a shift, others by presentation time), so a
        seek can land after the wanted frame; then it steps back one key frame at a time, and at the first one it
        reopens the file, which always starts at the beginning. After a seek, pictures before the first key frame
        decoded (open-GOP leading pictures, or a seek that landed between key frames) are passed over. Files
        without random access, and files whose demuxer refuses to seek (seen: RealMedia without an index), are
        always reopened.
        """
        key_before, keyframe = self.index.key_before, self.index.keyframe
        key = int(key_before[target]) if self.index.random_access and self._seekable else 0
        while key > 0:
            try:
                self._container.seek(self._aim(key), stream=self._stream, backward=True, any_frame=False)
            except av.FFmpegError:
                self._seekable = False
                break
            self._frames = self._decoded()
            i, first = next(((i, f) for i, f in self._frames if i is not None and keyframe[i]), (None, None))
            if i is not None and i <= target:
                self._frames = itertools.chain([(i, first)], self._frames)
                self._pos, self._sought = i - 1, key
                return
            key = int(key_before[key - 1])
        self._open()
        self._sought = int(key_before[target])  # no seek reaches it: decoding on from the start is the way

    def _aim(self, key: int) -> int:
        """Half a frame past key frame ``key``: demuxers that seek by decoding time plus a fixed shift (MP4 with
        B-frames and variable rate) would otherwise land one key frame early."""
        pts = self.index.pts
        later = pts[pts > pts[key]]
        return (int(pts[key]) + int(later.min())) // 2 if later.size else int(pts[key])

    def _decode(self, wanted, size):
        out = {}
        self._wanted_pts = set(self.index.pts[wanted].tolist()) if self._may_skip else set()
        if self._wanted_pts & self._skipped_pts:
            self._pos = self.num_frames  # the decoder ran ahead past frames now wanted, skipping them: start over
        key_before = self.index.key_before if self.index.random_access else np.zeros(self.num_frames, np.int64)
        j, seeks = 0, 0
        while j < len(wanted):
            f = int(wanted[j])
            if f <= self._pos or key_before[f] > max(self._pos + 1, self._sought):
                seeks += 1
                if seeks > 2 * len(wanted) + 2:  # each seek must bring a wanted frame; never loop on a bad file
                    raise VideoDecodeError(self.path, f"seeking does not reach frame {f} ({seeks - 1} seeks)")
                self._seek(f)
            for i, frame in self._frames:
                if i is None or i <= self._pos:
                    continue
                self._pos = i
                while j < len(wanted) and wanted[j] < i:
                    j += 1  # passed a wanted frame that never came out of the decoder: it stays missing
                if j < len(wanted) and wanted[j] == i:
                    if frame.is_corrupt:  # a damaged picture counts as not decoded (see bad_frames)
                        self.damaged.append(i)
                    else:
                        out[i] = self._convert(frame, size)
                    j += 1
                if j == len(wanted) or key_before[wanted[j]] > max(i + 1, self._sought):
                    break  # done, or the next wanted frame is cheaper to reach by a (new) seek
            else:
                self._pos = self.num_frames  # end of stream: what is still wanted did not decode
                break
        return out

    def close(self):
        self._container.close()
