"""The torchcodec backend (optional: ``pip install torchcodec``; needs FFmpeg's shared libraries on the system).

Where the packet scan numbers the frames (``numbering == "packets"``) torchcodec's exact-mode numbers are ours;
elsewhere frames are asked for by the time stamp FFmpeg's decoder gives them (``get_frames_played_at``). The time stamps of the frames it returns are checked against the index, so a file
it reads otherwise (seen: MPEG-4 Part 2 with packed B-frames in AVI) fails loudly instead of returning other
pictures. torchcodec turns pictures upright by the display matrix; with ``autorotate=False`` they are turned back.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchcodec.decoders import VideoDecoder

from videoml.data.decoding.reader import VideoReader
from videoml.errors import VideoDecodeError, first_line


class TorchCodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(self, path, index, threads=1, bad_frames="error", autorotate=True):
        super().__init__(path, index, threads, bad_frames, autorotate)
        if not index.random_access:
            raise VideoDecodeError(self.path, "FFmpeg's pictures of this file are reached only by decoding it from "
                                              f"the start ({'; '.join(index.notes)}); use the pyav backend")
        if index.rotation and index.bit_depth > 8:
            raise VideoDecodeError(self.path, "torchcodec turns high-bit-depth pictures otherwise than FFmpeg's "
                                              "command line (mean difference 1.5 levels); use the pyav backend")
        try:
            self._decoder = VideoDecoder(self.path, stream_index=index.stream_index, seek_mode="exact",
                                         num_ffmpeg_threads=threads, dimension_order="NHWC")
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec cannot open it ({first_line(e)})") from None

    def _decode(self, wanted, size):
        seconds = self.index.pts[wanted] * float(self.index.time_base)
        try:
            if self.index.numbering == "packets":  # torchcodec's exact mode numbers frames by the same scan
                batch = self._decoder.get_frames_at(indices=wanted.tolist())
            else:
                batch = self._decoder.get_frames_played_at(seconds=seconds.tolist())
        except (RuntimeError, IndexError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed ({first_line(e)})") from None
        if not np.allclose(batch.pts_seconds.numpy(), seconds, atol=1e-4):
            raise VideoDecodeError(self.path, "torchcodec returned frames at other time stamps than the index's "
                                              "(it numbers this file's frames differently); use another backend")
        frames = batch.data
        if self.index.rotation and not self.autorotate:
            frames = torch.rot90(frames, k=self.index.rotation // 90, dims=(1, 2))  # back as stored
        if size:
            # torchcodec has no scaling of its own here: bilinear with antialias, like torchvision's Resize
            w, h = size
            x = frames.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            frames = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return {int(i): f for i, f in zip(wanted, np.asarray(frames.contiguous()))}

    def close(self):
        self._decoder = None
