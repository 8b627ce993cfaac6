"""`videoml bench infer`: a preset of the suite, videoml infer against PyTorchVideo's tutorial loop and the model."""

import json

import pytest
from helpers import videoml


@pytest.mark.slow
def test_infer_bench_compares_infer_with_the_tutorial_loop_and_the_model(tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "infer", "--data", str(tmp_path / "data"), "--out", str(out), "--model", "x3d_tiny",
                     "--views", "2", "--videos", "3", "--baseline-videos", "2", "--batch-size", "4",
                     "--num-workers", "1", "--repeats", "2", "--engines", "[local, ray]")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads((out / "suite.json").read_text())["rows"]}
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    infer, loop, model, eager = (runs[n] for n in ("infer-x3d_tiny-videoml_infer-b4-w1",
                                                   "infer-x3d_tiny-pytorchvideo_loop", "infer-x3d_tiny-model_only-b4",
                                                   "infer-x3d_tiny-model_only_eager-b4"))
    assert set(runs) == set(rows) and len(runs) == 5
    assert len(infer["samples_s"]) == len(loop["samples_s"]) == len(model["samples_s"]) == 2
    # a whole run counts every clip: 3 videos x 2 views for infer, 2 x 2 for the loop; the model a batch
    assert infer["stats"]["clips_per_s"] == pytest.approx(3 * 2 / infer["stats"]["median_s"])
    assert loop["stats"]["clips_per_s"] == pytest.approx(2 * 2 / loop["stats"]["median_s"])
    assert model["stats"]["clips_per_s"] == pytest.approx(4 / model["stats"]["median_s"])
    ours = rows["infer-x3d_tiny-videoml_infer-b4-w1"]
    assert ours["videos_per_s"] == pytest.approx(infer["stats"]["clips_per_s"] / 2)
    assert ours["speedup_vs_pytorchvideo"] == pytest.approx(
        ours["videos_per_s"] / (loop["stats"]["clips_per_s"] / 2))
    assert ours["clips_vs_model_only"] == pytest.approx(infer["stats"]["clips_per_s"] / model["stats"]["clips_per_s"])
    assert rows["infer-x3d_tiny-model_only-b4"]["speedup_vs_eager"] == pytest.approx(
        model["stats"]["clips_per_s"] / eager["stats"]["clips_per_s"])  # the fast inference graph vs the model
    ray = rows["infer-x3d_tiny-videoml_infer_ray-b4-w1"]  # --engine ray, the same videos
    assert runs["infer-x3d_tiny-videoml_infer_ray-b4-w1"]["stats"]["clips_per_s"] == pytest.approx(
        3 * 2 / runs["infer-x3d_tiny-videoml_infer_ray-b4-w1"]["stats"]["median_s"])
    assert ray["ray_vs_local"] == pytest.approx(ray["videos_per_s"] / ours["videos_per_s"])
    summary = json.loads((out / "suite.json").read_text())
    assert any(n.startswith("x3d_tiny videoml infer --engine ray: ") and "x the local engine's" in n
               for n in summary["notes"])
    assert any(n.startswith("x3d_tiny videoml infer: ") and "tutorial loop" in n for n in summary["notes"])
    assert any(n.startswith("x3d_tiny fast inference graph (BatchNorm folded): ") for n in summary["notes"])
    assert "| infer | x3d_tiny | videoml_infer, 1 workers |" in (out / "table.md").read_text()
