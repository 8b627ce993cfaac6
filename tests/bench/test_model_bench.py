import json

import pytest
from helpers import videoml

from videoml.bench.model import Mode
from videoml.errors import UsageError


def test_modes_parse_in_any_order():
    assert Mode.parse("bf16+cl3d+compile") == Mode("channels_last_3d", "bf16", True)
    assert Mode.parse("fp32") == Mode() and Mode.parse("cl3d").name == "cl3d+fp32"
    optimized = Mode.parse("optimized+cl3d")  # the forward as videoml infer runs it: no train step
    assert optimized.name == "cl3d+fp32+optimized" and optimized.measures("forward")
    assert not optimized.measures("train_step")
    with pytest.raises(UsageError, match="unknown mode part 'fp64'"):
        Mode.parse("cl3d+fp64")


@pytest.mark.slow
def test_model_bench_times_every_model_mode_and_stage(tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "model", "--models", "x3d_tiny", "--modes", "fp32,cl3d,cl3d+optimized", "--batch-size", "2",
                     "--warmup", "1", "--steps", "1", "--repeats", "3", "--out", str(out), "--profile")
    assert result.returncode == 0, result.stderr[-3000:]
    # profiled steps on a CPU, quietly: no profiler lines (USDT profiler_start, "ERROR: gpuGetDeviceCount failed")
    assert not [line for line in result.stderr.splitlines() if line.startswith(("USDT:", "ERROR:", "STAGE:"))]
    names = [f"model-torch-x3d_tiny-{mode}-{stage}-b2" for mode in ("fp32", "cl3d") for stage in ("forward",
                                                                                                  "train_step")]
    names.append("model-torch-x3d_tiny-cl3d+optimized-forward-b2")  # BatchNorm folded: a forward, no train step
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    assert sorted(runs) == sorted(names)
    for run in runs.values():  # the suite's schema: every round, the statistics, the operators
        stats = run["stats"]
        assert len(run["samples_s"]) == 3 and stats["clips_per_s"] == pytest.approx(2 / stats["median_s"])
        assert stats["iqr_s"][0] <= stats["median_s"] <= stats["iqr_s"][1] and run["operators"]
    summary = json.loads((out / "suite.json").read_text())
    assert summary["config"]["frameworks"] == {"torch": ["fp32", "cl3d", "cl3d+optimized"]}
    assert summary["config"]["models"] == ["x3d_tiny"]
    table = (out / "table.md").read_text()
    assert "| torch fp32 | " in table and "| torch cl3d | " in table and "## train_step, batch 2" in table
    for stage, mode in (("forward", "cl3d"), ("forward", "cl3d+optimized"), ("train_step", "cl3d")):
        ratio = runs[f"model-torch-x3d_tiny-{mode}-{stage}-b2"]["stats"]["clips_per_s"] / \
            runs[f"model-torch-x3d_tiny-fp32-{stage}-b2"]["stats"]["clips_per_s"]  # each mode against the first
        note = next(n for n in summary["notes"] if n.startswith(f"x3d_tiny {stage}, batch 2, torch: "))
        assert f" {mode} {ratio:.2f}x" in note and note.endswith("the clips/s of fp32")
    for name in names:
        assert list((out / f"profile-{name}").glob("trace.*.json"))


def test_unknown_models_and_modes_are_usage_errors(tmp_path):
    bad_model = videoml("bench", "model", "--models", "x3d_huge", "--out", str(tmp_path))
    assert bad_model.returncode == 1 and "unknown model 'x3d_huge'" in bad_model.stderr
    bad_mode = videoml("bench", "model", "--modes", "fp32,turbo", "--out", str(tmp_path))
    assert bad_mode.returncode == 2 and "unknown mode part 'turbo'" in bad_mode.stderr


def test_a_compiled_steps_operators_name_inductors_graphs_once():
    """Each compiled graph is a profiler event of its own name ("## Call CompiledFxGraph <hash> ##"): one row."""
    import torch

    from videoml.bench.worker import _operator_shares
    from videoml.models.optimize import before_compiling

    before_compiling()
    model = torch.compile(torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)))
    x = torch.randn(8, 64, requires_grad=True)
    step = lambda: model(x).sum().backward()  # noqa: E731  (a forward graph and a backward graph)
    step()
    shares = dict(_operator_shares(step, torch.device("cpu"), lambda: None, top=20))
    assert "Inductor's compiled graphs" in shares and not any("CompiledFxGraph" in name for name in shares)
    assert list(shares.values()) == sorted(shares.values(), reverse=True)  # the largest first
