"""The torchcodec backend (optional: ``pip install torchcodec``; needs FFmpeg's shared libraries on the system).

In exact seek mode torchcodec scans the packets as we do and numbers frames in presentation order, so its numbers
are ours; the time stamps of the frames it returns are checked against the index, so a file it numbers otherwise
(seen: MPEG-4 Part 2 with B-frames in AVI) fails loudly instead of returning other pictures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchcodec.decoders import VideoDecoder

from videoml.data.decoding.reader import VideoReader
from videoml.errors import VideoDecodeError


class TorchCodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(self, path, index, threads=1, bad_frames="error"):
        super().__init__(path, index, threads, bad_frames)
        try:
            self._decoder = VideoDecoder(self.path, stream_index=index.stream_index, seek_mode="exact",
                                         num_ffmpeg_threads=threads, dimension_order="NHWC")
        except (RuntimeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"torchcodec cannot open it ({str(e).splitlines()[0]})") from None

    def _decode(self, wanted, size):
        try:
            batch = self._decoder.get_frames_at(indices=wanted.tolist())
        except (RuntimeError, IndexError) as e:
            raise VideoDecodeError(self.path, f"torchcodec failed ({str(e).splitlines()[0]})") from None
        if not np.allclose(batch.pts_seconds.numpy(), self.index.timestamps[wanted], atol=1e-4):
            raise VideoDecodeError(self.path, "torchcodec returned frames at other time stamps than the index's "
                                              "(it numbers this file's frames differently); use another backend")
        frames = batch.data
        if size:
            # torchcodec has no scaling of its own here: bilinear with antialias, like torchvision's Resize
            w, h = size
            x = frames.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            frames = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return {int(i): f for i, f in zip(wanted, np.asarray(frames.contiguous()))}

    def close(self):
        self._decoder = None
