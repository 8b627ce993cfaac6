"""Generated files with traits of real ones (open GOPs, 10-bit pictures, display matrices): every backend returns
FFmpeg's pictures or refuses the file with a reason."""

import shutil

import pytest
from helpers import TRAITS

from videoml.data.conformance import FFmpegFrames, check_backend
from videoml.data.decoding import BACKENDS, backend_available

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line (the ground truth)")


@pytest.mark.parametrize("kind", list(TRAITS))
def test_every_backend_gives_ffmpegs_pictures_or_refuses(traits, kind):
    truth = FFmpegFrames(traits[kind])
    assert len(truth) == 60
    if TRAITS[kind].get("rotation") in (90, 270):
        assert truth[0].shape == (64, 48, 3)  # FFmpeg's command line shows it upright
    verdicts = {b: check_backend(str(traits[kind]), b, truth) for b in BACKENDS if backend_available(b)}
    assert verdicts["pyav"].status == "exact", verdicts["pyav"]
    for backend, verdict in verdicts.items():
        assert verdict.status in ("exact", "refused") and (verdict.status == "exact" or verdict.detail), verdict
    if "decord" in verdicts and (TRAITS[kind].get("bit_depth") == 10 or TRAITS[kind].get("open_gop")):
        assert verdicts["decord"].status == "refused"  # seen returning other pictures: refused up front
