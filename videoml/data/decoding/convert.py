"""Decoded pictures to RGB arrays the way FFmpeg's command line converts them.

``ffmpeg -i F -pix_fmt rgb24`` converts through libavfilter's ``scale`` filter, which sets swscale up from the
frame's properties (colour range and matrix, chroma siting, interlacing) and uses bicubic filtering.
``VideoFrame.to_ndarray`` / ``VideoReformatter`` call swscale directly with other settings: on real files (MPEG-2,
Indeo's 4:1:0, 10-bit) their RGB differs from FFmpeg's by 0.5 to 4 levels on average. So pictures go through the same
filters the command line inserts: the display matrix's rotation (``transpose``/``hflip,vflip``, as ``-autorotate``
does), an optional resize (bilinear, in the same swscale pass), and ``format=rgb24``. One filter graph per picture
geometry is kept for the reader's life. A stream whose pictures change size midway (a transport stream cut from two
sources) is shown at its first size, as the command line's filter graph scales every later picture to the size it
was configured with (bicubic, its default).
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

# Display matrix rotation (degrees counter-clockwise, as FrameIndex.rotation) -> the filters FFmpeg's command line
# inserts to show the picture upright (fftools' autorotate).
ROTATION_FILTERS = {90: [("transpose", "cclock")], 180: [("hflip", None), ("vflip", None)],
                    270: [("transpose", "clock")]}


class RGBConverter:
    """Converts decoded frames to (H, W, 3) uint8 RGB arrays, optionally resized and turned upright."""

    def __init__(self, rotation: int = 0, threads: int = 1, stored: tuple[int, int] | None = None):
        self.rotation = rotation
        self.threads = threads
        self.stored = stored  # (width, height) of the first picture: later pictures of other sizes are scaled to it
        self.sizes: set[tuple[int, int]] = set()  # the sizes of the pictures converted, as decoded
        self._graphs: dict[tuple, tuple] = {}

    def _graph(self, frame, size: tuple[int, int] | None):
        key = (frame.width, frame.height, frame.format.name, size)
        if key not in self._graphs:
            graph = av.filter.Graph()
            graph.threads = self.threads
            chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                      time_base=Fraction(1, 1000))]
            if size:
                w, h = size if self.rotation not in (90, 270) else size[::-1]  # resize before turning: cheaper
                chain.append(graph.add("scale", f"w={w}:h={h}:flags=bilinear"))
            elif self.stored and (frame.width, frame.height) != self.stored:
                chain.append(graph.add("scale", f"w={self.stored[0]}:h={self.stored[1]}:flags=bicubic"))
            for name, args in ROTATION_FILTERS.get(self.rotation, []):
                chain.append(graph.add(name, args))
            chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            graph.configure()
            self._graphs[key] = (graph, chain[0], chain[-1])
        return self._graphs[key]

    def __call__(self, frame, size: tuple[int, int] | None = None) -> np.ndarray:
        """``frame`` as RGB; ``size`` is (width, height) of the upright result, None for the frame's own size."""
        graph, source, sink = self._graph(frame, size)
        self.sizes.add((frame.width, frame.height))
        source.push(frame)
        return sink.pull().to_ndarray()
