"""The passes over a file that number its frames: a packet scan, its verification, and a decode pass.

Ground truth is FFmpeg's decoder: frame ``i`` is the ``i``-th picture it outputs when the file is decoded from the
start. On most files the packets' presentation time stamps, sorted, give exactly that order, and the packet scan
(demuxing only, no decoding) is all that is needed. Real files break it in several ways:

- packets that yield no picture (a last packet the decoder drops; MPEG-4 Part 2 "packed B-frames", where a B-frame
  travels inside the packet before it and a few-byte placeholder follows; packets an MP4 edit list discards);
- container time stamps that disagree with the decoder's output order, or that are missing or repeated (MPEG-PS
  without time stamps, MPEG-TS with a discontinuity, Ogg);
- packets before the first key frame, or key-frame flags the demuxer does not set.

So the scan's numbering is trusted only when the packets' time stamps are complete, distinct and in a monotonic
decoding order, and when decoding the head of the file and its last GOP gives exactly the pictures the scan
predicts. Anything else gets a decode pass: the whole file is decoded once and frames are numbered in the order the
decoder outputs them, identified by their decoded time stamps when those are present and distinct, else by their
count from the start. Every pass is bounded by the file's packets; nothing seeks in a loop.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import av
import numpy as np

HEAD_FRAMES = 48  # pictures decoded from the start to verify a scan (at least up to the second key frame)
AVFMT_NOTIMESTAMPS = 0x80  # libavformat's flag of demuxers whose files carry no time stamps (raw elementary streams)


@dataclass
class Packets:
    """What the packet scan saw, in file (decoding) order."""

    pts: list = field(default_factory=list)  # presentation time stamps (None where missing)
    dts: list = field(default_factory=list)
    key: list = field(default_factory=list)
    tiny: int = 0  # packets of at most 8 bytes: placeholders of packed B-frames ("N-VOPs") and the like
    discarded: int = 0  # packets the container marks for discarding (MP4 edit lists)
    error: str | None = None  # why the scan stopped early (truncated or corrupt data)
    x264_build: int | None = None  # the x264 version its SEI in the first packet names (see FrameIndex.needs_primer)
    invented_by: str | None = None  # the demuxer that made the time stamps up (a raw stream has none), if any

    @property
    def open_gop(self) -> bool:
        """Whether a key frame after the first is followed, in decoding order, by pictures shown before it
        (leading pictures that refer to the previous GOP)."""
        seen_key, key_pts = False, None
        for pts, key in zip(self.pts, self.key):
            if key:
                key_pts = pts if seen_key else None
                seen_key = True
            elif key_pts is not None and pts is not None and pts < key_pts:
                return True
        return False

    @property
    def reordered(self) -> bool:
        """Whether decoding order differs from presentation order (B-frames)."""
        stamps = [p for p in self.pts if p is not None]
        return bool(np.any(np.diff(np.asarray(stamps, dtype=np.int64)) < 0)) if len(stamps) > 1 else False


@dataclass
class Numbering:
    """Frames in decoder output order: identity stamps, key flags, and the rule that produced them."""

    pts: np.ndarray
    keyframe: np.ndarray
    rule: str  # "packets", "decoded" or "sequential" (see FrameIndex.numbering)
    notes: list = field(default_factory=list)  # what made the scan untrustworthy, for `videoml data check`
    decode_errors: int = 0


def demuxed(container, stream, errors: list | None = None):
    """The stream's packets. A demuxer error (truncated or corrupt data; PyAV's IndexError when streams appear in
    the middle of a file) ends them, noted in ``errors``: what came before it is still read."""
    try:
        yield from container.demux(stream)
    except (av.FFmpegError, IndexError) as e:
        if errors is not None:
            errors.append(getattr(e, "strerror", None) or str(e) or type(e).__name__)


def scan_packets(container, stream) -> Packets:
    """Demux (no decoding) the stream's packets."""
    out, errors = Packets(), []
    if container.format.flags & AVFMT_NOTIMESTAMPS:
        out.invented_by = container.format.name
    for packet in demuxed(container, stream, errors):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        if packet.is_discard:
            out.discarded += 1
            continue
        if not out.pts:
            version = re.search(rb"x264 - core (\d+)", bytes(packet))
            out.x264_build = int(version.group(1)) if version else None
        out.pts.append(packet.pts)
        out.dts.append(packet.dts)
        out.key.append(packet.is_keyframe)
        out.tiny += packet.size <= 8
    out.error = errors[0] if errors else None
    return out


def untrusted_reasons(packets: Packets, codec: str) -> list[str]:
    """Why the packets' time stamps cannot number the frames without decoding (empty: they may)."""
    reasons = []
    if packets.invented_by:
        # Its parser counts frames from wherever the demuxer starts: after a seek to a guessed byte position, the same
        # time stamps name other pictures (seen: frame 8 of 10 in an .m1v).
        reasons.append(f"no time stamps in the file (FFmpeg's {packets.invented_by} demuxer counts frames)")
    elif any(p is None for p in packets.pts):
        reasons.append("packets without time stamps")
    elif len(set(packets.pts)) != len(packets.pts):
        reasons.append("repeated time stamps")
    dts = np.array([d for d in packets.dts if d is not None], dtype=np.int64)
    if np.any(np.diff(dts) < 0):
        reasons.append("time stamps jump back (discontinuity)")
    if codec == "mpeg4" and packets.tiny:
        reasons.append("packed B-frames")
    if not any(packets.key):
        reasons.append("no key frame flagged by the container")
    return reasons


def numbering_from_packets(packets: Packets) -> Numbering:
    """Sorted presentation time stamps, from the first key frame on (earlier packets reference missing pictures)."""
    first = packets.key.index(True)
    pts = np.asarray(packets.pts[first:], dtype=np.int64)
    order = np.argsort(pts, kind="stable")
    return Numbering(pts[order], np.asarray(packets.key[first:], dtype=bool)[order], "packets")


@dataclass
class Decoded:
    """Pictures decoded from some position on."""

    pts: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    errors: int = 0  # packets the decoder rejected, and pictures it flagged as damaged
    rotation: int = 0  # the display matrix's rotation of the first picture (degrees, counter-clockwise)
    size: tuple[int, int] | None = None  # (width, height) of the first picture, as decoded


class Pictures:
    """The pictures one decoder outputs from the container's current position on, taken a part at a time.

    The parts come from one decoder: a part may end in the middle of what one packet gave (the pictures a short
    file's last packet drains out of the decoder), and the next part starts there. Decoding on after the decoder
    was drained would be an error, not the end of the file."""

    def __init__(self, container, stream):
        self.rejected = 0  # packets the decoder rejected (corrupt data)
        self._frames = self._decode(container, stream)

    def _decode(self, container, stream):
        for packet in demuxed(container, stream):
            try:
                frames = stream.decode(packet)
            except av.FFmpegError:
                self.rejected += 1  # a corrupt packet: FFmpeg's command line also goes on with the next
                continue
            yield from frames

    def take(self, limit: int | None = None) -> Decoded:
        """Time stamps and key flags of the next ``limit`` pictures (None: all that are left)."""
        out, rejected = Decoded(), self.rejected
        for frame in itertools.islice(self._frames, limit):
            if not out.pts:
                out.rotation = int(round(frame.rotation)) % 360
                out.size = (frame.width, frame.height)
            out.pts.append(frame.pts)
            out.keys.append(bool(frame.key_frame))
            out.errors += frame.is_corrupt  # concealed damage: the picture depends on where decoding started
        out.errors += self.rejected - rejected
        return out


def verify(container, stream, numbering: Numbering) -> Decoded | None:
    """The head's decoded pictures when decoding the head of the file and its last GOP gives exactly the pictures
    ``numbering`` predicts; None when it does not. ``container`` must be positioned at its start."""
    pts, keys = numbering.pts, numbering.keyframe
    key_positions = np.flatnonzero(keys)
    head = min(len(pts), max(HEAD_FRAMES, int(key_positions[1]) + 1 if len(key_positions) > 1 else 0))
    pictures = Pictures(container, stream)
    got = pictures.take(head)
    if got.errors or got.pts != pts[:head].tolist():
        return None
    last_key = int(key_positions[-1])
    if last_key < head:  # the rest of the file, from the same decoder (on a short file: nothing, or its last pictures)
        rest = pictures.take()
        return got if not rest.errors and got.pts + rest.pts == pts.tolist() else None
    try:
        container.seek(int(pts[last_key]), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        return None  # a demuxer that cannot seek in this file (seen: RealMedia without an index)
    tail = Pictures(container, stream).take()
    # The seek may land on an earlier key frame: compare from the first key frame decoded (open-GOP leading pictures
    # before it are left to the head check, which sees the same structure).
    key_pts = {int(p): int(k) for p, k in zip(pts[key_positions], key_positions)}
    start = next((n for n, p in enumerate(tail.pts) if p in key_pts), None)
    if tail.errors or start is None or tail.pts[start:] != pts[key_pts[tail.pts[start]]:].tolist():
        return None
    return got


def decode_pass(container, stream, notes: list[str], stamped: bool = True) -> tuple[Numbering, Decoded]:
    """Number frames by decoding the whole file once (``container`` at its start), in the decoder's output order;
    ``stamped=False``: the file has no time stamps of its own, and frames are numbered by their count."""
    got = Pictures(container, stream).take()
    keyframe = np.asarray(got.keys, dtype=bool)
    distinct = got.pts and None not in got.pts and len(set(got.pts)) == len(got.pts)
    if got.errors:
        # Damaged pictures depend on where decoding started: only decoding from the start gives FFmpeg's.
        notes = notes + [f"{got.errors} packet(s) or picture(s) damaged: read from the start, without random access"]
    elif stamped and distinct:
        return Numbering(np.asarray(got.pts, dtype=np.int64), keyframe, "decoded", notes, got.errors), got
    elif stamped:
        notes = notes + ["decoded pictures have no distinct time stamps: read from the start, without random access"]
    return Numbering(np.arange(len(got.pts), dtype=np.int64), keyframe, "sequential", notes, got.errors), got
