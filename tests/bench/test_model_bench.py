import json

import pytest
from helpers import videoml

from videoml.bench.model import Mode
from videoml.errors import UsageError


def test_modes_parse_in_any_order():
    assert Mode.parse("bf16+cl3d+compile") == Mode("channels_last_3d", "bf16", True)
    assert Mode.parse("fp32") == Mode() and Mode.parse("cl3d").name == "cl3d+fp32"
    with pytest.raises(UsageError, match="unknown mode part 'fp64'"):
        Mode.parse("cl3d+fp64")


@pytest.mark.slow
def test_model_bench_times_every_model_mode_and_stage(tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "model", "--models", "x3d_tiny", "--modes", "fp32,cl3d", "--batch-size", "2",
                     "--warmup", "1", "--steps", "1", "--repeats", "3", "--out", str(out), "--profile")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "model.json").read_text())
    rows = results["rows"]
    assert [(r["mode"], r["stage"]) for r in rows] == [("fp32", "forward"), ("fp32", "train_step"),
                                                        ("cl3d+fp32", "forward"), ("cl3d+fp32", "train_step")]
    for r in rows:
        assert len(r["samples_ms"]) == 3 and r["clips_per_s"] == pytest.approx(2000 / r["ms_per_step_median"], rel=0.01)
        assert r["ms_per_step_iqr"][0] <= r["ms_per_step_median"] <= r["ms_per_step_iqr"][1]
    assert results["environment"]["torch"] and results["config"]["models"] == ["x3d_tiny"]
    table = (out / "model.md").read_text()
    assert "| x3d_tiny | fp32 |" in table and "1.00x | 1.00x |" in table
    for mode in ("fp32", "cl3d+fp32"):
        assert list((out / f"profile-x3d_tiny-{mode}").glob("trace.*.json"))


def test_unknown_models_and_modes_are_usage_errors(tmp_path):
    bad_model = videoml("bench", "model", "--models", "x3d_huge", "--out", str(tmp_path))
    assert bad_model.returncode == 1 and "unknown model 'x3d_huge'" in bad_model.stderr
    bad_mode = videoml("bench", "model", "--modes", "fp32,turbo", "--out", str(tmp_path))
    assert bad_mode.returncode == 2 and "unknown mode part 'turbo'" in bad_mode.stderr
