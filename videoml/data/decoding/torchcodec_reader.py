"""The torchcodec backend (optional: ``pip install torchcodec``; needs FFmpeg's shared libraries on the system).

Where the packet scan numbers the frames (``numbering == "packets"``) torchcodec's exact-mode numbers are ours;
elsewhere frames are asked for by the time stamp FFmpeg's decoder gives them (``get_frames_played_at``). torchcodec
numbers frames by a packet scan of its own, so a file is refused when opened, with the reason, where that scan
disagrees with the index (another frame count, other key frames, another first frame) or where torchcodec was seen to
return other pictures or none; the time stamps of the frames it returns are still checked on every call. torchcodec
turns pictures upright by the display matrix; with ``autorotate=False`` they are turned back.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torchcodec.decoders import VideoDecoder

from videoml.data.decoding.index import VideoBytes
from videoml.data.decoding.reader import VideoReader, resize_frames
from videoml.errors import VideoDecodeError, first_line

USE_PYAV = "; use the pyav backend"


def _reason(error: Exception) -> str:
    """torchcodec's message without the C++ function and source location it starts with."""
    return re.sub(r"^\w+, \S+:\d+, ", "", first_line(error)).rstrip(".")


class TorchCodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(self, path, index, threads=1, bad_frames="error", autorotate=True):
        super().__init__(path, index, threads, bad_frames, autorotate)
        reason = self._refusal()
        if reason:
            raise VideoDecodeError(self.path, reason + USE_PYAV)
        try:
            source = self.source.data if isinstance(self.source, VideoBytes) else self.path
            self._decoder = VideoDecoder(source, stream_index=index.stream_index, seek_mode="exact",
                                         num_ffmpeg_threads=threads, dimension_order="NHWC")
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec cannot open it ({_reason(e)}){USE_PYAV}") from None
        reason = self._disagreement()
        if reason:
            raise VideoDecodeError(self.path, f"torchcodec's packet scan {reason}{USE_PYAV}")

    def _refusal(self) -> str | None:
        """Why torchcodec cannot give FFmpeg's pictures of this file, from the index alone (None: it may)."""
        index = self.index
        if not index.random_access:
            return ("FFmpeg's pictures of this file are reached only by decoding it from the start "
                    f"({'; '.join(index.notes)})")
        if index.rotation and index.bit_depth > 8:
            return ("torchcodec turns high-bit-depth pictures otherwise than FFmpeg's command line (mean difference "
                    "1.5 levels)")
        if "packed B-frames" in index.notes:
            return "torchcodec does not number packed B-frames (MPEG-4 Part 2 in AVI) as FFmpeg's decoder does"
        if index.header.get("open_gop"):
            return "torchcodec loses the leading pictures of open GOPs after a seek (seen: no frame for the last ones)"
        if index.mpeg_stream:
            return ("torchcodec does not reach the pictures asked for in MPEG program, transport and elementary "
                    "streams (.mpg .vob .ts .m2ts .m1v ...; seen: no frame, or other frames)")
        return None

    def _disagreement(self) -> str | None:
        """How torchcodec's own numbering differs from the index's (None: it agrees)."""
        index, metadata = self.index, self._decoder.metadata
        if metadata.num_frames != index.num_frames:
            return f"counts {metadata.num_frames} frames, FFmpeg's decoder outputs {index.num_frames}"
        keys = self._decoder._get_key_frame_indices().tolist()  # torchcodec's scan; no public accessor
        if index.numbering == "packets" and keys != index.keyframes.tolist():
            return f"puts key frames at {keys[:4]}..., FFmpeg's decoder at {index.keyframes[:4].tolist()}..."
        first = float(index.timestamps[0])
        if abs(metadata.begin_stream_seconds - first) > 0.5 / max(index.fps, 1e-6):
            return (f"starts at {metadata.begin_stream_seconds:.3f} s, FFmpeg's first picture is shown at "
                    f"{first:.3f} s (a packet that shows no picture)")
        return None

    def _decode(self, wanted, size):
        seconds = self.index.pts[wanted] * float(self.index.time_base)
        try:
            if self.index.numbering == "packets":  # torchcodec's exact mode numbers frames by the same scan
                batch = self._decoder.get_frames_at(indices=wanted.tolist())
            else:
                batch = self._decoder.get_frames_played_at(seconds=seconds.tolist())
        except (RuntimeError, IndexError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed to decode frames {wanted[:4].tolist()} "
                                              f"({_reason(e)}){USE_PYAV}") from None
        if not np.allclose(batch.pts_seconds.numpy(), seconds, atol=1e-4):
            raise VideoDecodeError(self.path, "torchcodec returned frames at other time stamps than the index's (it "
                                              f"numbers this file's frames differently){USE_PYAV}")
        frames = batch.data
        if self.index.rotation and not self.autorotate:
            frames = torch.rot90(frames, k=self.index.rotation // 90, dims=(1, 2))  # back as stored
        if size:  # torchcodec has no scaling of its own here
            frames = resize_frames(frames, size)
        return {int(i): f for i, f in zip(wanted, np.asarray(frames.contiguous()))}

    def close(self):
        self._decoder = None
