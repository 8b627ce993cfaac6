"""Every installed backend on the files videoml writes itself: the demo's synthetic videos, their prepared re-encodes,
synthetic clips of 1 to 49 frames, and every codec `data synth` writes. On these, every backend must give FFmpeg's
pictures exactly (the conformance harness: FFmpeg's command line is the ground truth), without a refusal. Real files
nobody here wrote are tests/data/test_conformance.py's."""

import shutil
from fractions import Fraction

import numpy as np
import pytest
from helpers import INSTALLED, decord3

from videoml.data.conformance import check_file
from videoml.data.encode import Encoding, encode_video
from videoml.data.prepare import PrepareConfig, prepare
from videoml.data.synth import SynthConfig, generate

pytestmark = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="needs FFmpeg's command line (the ground truth)")

LENGTHS = (2, 8, 16, 24, 48, 49)  # frames: within and just past the verification's head (48), one or several GOPs
DEMO = dict(classes=("move_left", "grow"), videos_per_class=1)  # the demo's settings otherwise (128x128, 48 frames)


def _first_video(config: SynthConfig, folder) -> str:
    dataset = generate(config, folder, num_workers=1)
    return str(dataset.root / dataset.manifest()[0]["path"])


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    demo = generate(SynthConfig(**DEMO), root / "synth", num_workers=2)
    files = {f"demo {r['path']}": str(demo.root / r["path"]) for r in demo.manifest()}
    prepared = prepare(demo.root, root / "prepared", PrepareConfig(short_side=88), num_workers=2)
    assert not prepared.bad
    files.update({f"prepared {r['path']}": str(root / "prepared" / r["path"]) for r in prepared.records})
    for frames in LENGTHS:
        files[f"{frames} frames"] = _first_video(SynthConfig(**DEMO, frames=frames, width=64, height=48),
                                                 root / f"frames{frames}")
    for codec in ("hevc", "mpeg4", "vp9"):
        files[codec] = _first_video(SynthConfig(**DEMO, frames=24, width=64, height=48, codec=codec), root / codec)
    one = root / "one_frame.mp4"  # synth makes motion, so two frames at least: one frame through the same encoder
    encode_video([np.full((48, 64, 3), 128, np.uint8)], [0.0], one, Encoding(frame_rate=Fraction(16)))
    files["1 frame"] = str(one)
    return files


def test_every_backend_reads_every_file_videoml_writes_exactly(own_files):
    verdicts = {name: check_file(path, INSTALLED) for name, path in own_files.items()}
    not_exact = {(name, v.backend): f"{v.status}: {v.detail}" for name, vs in verdicts.items() for v in vs
                 if v.status != "exact"}
    if decord3():  # decord2 (aarch64) refuses HEVC with B-frames, by name
        assert "loses the frames of HEVC" in not_exact.pop(("hevc", "decord"), "loses the frames of HEVC")
    assert not not_exact, not_exact
    assert len(verdicts) == 2 + 2 + len(LENGTHS) + 3 + 1
    assert {v.frames for name, vs in verdicts.items() for v in vs if name.endswith("frames")} == set(LENGTHS)
