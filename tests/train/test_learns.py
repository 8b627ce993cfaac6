"""The proof that training works and that the model uses time: on motion classes whose single frames look alike,
x3d_tiny learns from scratch in a minute of CPU, and the same network on one frame stays near chance."""

import pytest
from helpers import fit_args, metrics, videoml

from videoml.data.synth import SynthConfig, generate

MOVES = ("move_left", "move_right", "move_up", "move_down")


@pytest.mark.slow
def test_a_clip_model_learns_motion_and_a_frame_model_cannot(tmp_path):
    data = generate(SynthConfig(classes=MOVES, videos_per_class=25, splits=(0.6, 0.4, 0.0), seed=5),
                    tmp_path / "data", num_workers=2)
    best = {}
    for model in ("x3d_tiny", "x3d_tiny_frame"):
        root = tmp_path / model
        result = videoml("fit", *fit_args(data, root, "--model.model", model, "--trainer.max_epochs", "12",
                                          "--data.batch_size", "8", "--model.lr_base_batch_size", "8",
                                          "--data.num_workers", "1", "--data.test", "null"))
        assert result.returncode == 0, result.stderr[-3000:]
        m = metrics(root / "logs" / "version_0")
        assert m["val/videos"][-1][1] == 40.0
        best[model] = max(v for _, v in m["val/top1"])
    # 4 classes (chance 0.25), 40 validation videos
    assert best["x3d_tiny"] >= 0.7, best
    assert best["x3d_tiny_frame"] <= 0.45, best
