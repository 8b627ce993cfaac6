"""`videoml bench suite` and `videoml bench compare`: a declared matrix, one process per framework, results as
JSON per run, a table in the PyTorch-vs-TensorFlow shape, plots, and comparisons that know the noise."""

import json
import time
from pathlib import Path

import pytest
import yaml
from helpers import videoml

from videoml.bench.measure import TooNoisy, Timing, check_noise, round_robin, summarize, time_rounds
from videoml.bench.records import Cell, Run, write_run
from videoml.bench.diagnose import summarize_suite
from videoml.bench.suite import Inference, Reading, SuiteConfig

SMOKE = dict(name="t", device="cpu", models=["x3d_tiny"], frameworks={"torch": ["cl3d"], "tf": ["graph"]},
             batch_sizes=[2], stages=["forward", "train_step", "decode", "transform", "pipeline"],
             backends=["pyav"], workers=[1], videos=8, threads=2,
             timing={"warmup": 1, "steps": 1, "repeats": 3, "max_spread": None})


def _config(tmp_path, **changes):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SMOKE, "data": str(tmp_path / "videos"), **changes}))
    return path


@pytest.mark.slow
def test_suite_measures_each_framework_in_its_own_process_and_reports(tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "suite", "--config", str(_config(tmp_path)), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "E0000" not in result.stderr and "W0000" not in result.stderr, result.stderr  # no TensorFlow C++ lines
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    assert set(runs) == {"model-torch-x3d_tiny-cl3d-forward-b2", "model-torch-x3d_tiny-cl3d-train_step-b2",
                         "model-tf-x3d_tiny-graph-forward-b2", "model-tf-x3d_tiny-graph-train_step-b2",
                         "decode-x3d_tiny-pyav", "transform-x3d_tiny-b2", "pipeline-torch-x3d_tiny-cl3d-b2-w1",
                         "pipeline-tf-x3d_tiny-graph-b2-w1"}
    for name, run in runs.items():
        assert run["schema"] == "videoml-bench-run/1" and len(run["samples_s"]) == 3
        stats = run["stats"]
        assert stats["ci95_s"][0] <= stats["median_s"] <= stats["ci95_s"][1]
        assert stats["clips_per_s"] == pytest.approx(run["items_per_step"] / stats["median_s"])
        assert run["machine"]["cores"] and run["seed"] == 0 and run["commit"]
        # the PyTorch worker never loaded TensorFlow
        assert run["tensorflow_loaded"] == (run["framework"]["name"] == "tf"), name
    assert runs["model-tf-x3d_tiny-graph-forward-b2"]["framework"]["version"].startswith("2.")
    decode = runs["decode-x3d_tiny-pyav"]
    assert decode["ceiling"]["clips_per_s"] > 0 and decode["ceiling"]["frames_decoded_per_clip"] >= 22
    assert 0 <= runs["pipeline-torch-x3d_tiny-cl3d-b2-w1"]["data_wait"] < 1

    summary = json.loads((out / "suite.json").read_text())
    assert summary["ceilings"]["flops_per_clip"]["x3d_tiny"] > 1e7
    peak = summary["ceilings"]["peaks"]["fp32"]  # the modes here are all float32: no other precision measured
    assert list(summary["ceilings"]["peaks"]) == ["fp32"] and peak["flops_per_s"] > 1e9
    assert peak["flops_per_s"] == max(peak["kernels"].values()) and peak["kernel"] in peak["kernels"]
    models = [r for r in summary["rows"] if r["kind"] == "model"]
    assert len(models) == 4
    for row in models:  # the cell's FLOP/s over the peak: FLOPs per clip x clips/s (a train step 3x the forward)
        flops = summary["ceilings"]["flops_per_clip"]["x3d_tiny"] * (3 if row["stage"] == "train_step" else 1)
        assert row["compute_ceiling_fraction"] == pytest.approx(row["clips_per_s"] * flops / peak["flops_per_s"])
        assert 0 < row["compute_ceiling_fraction"] < 1
        assert 0 < row["first_call_s"] < 60  # start-up: the first call, outside the timed rounds
    assert any("x3d_tiny train_step:" in n and "leads" in n for n in summary["notes"])
    table = (out / "table.md").read_text()
    assert "| framework / mode | x3d_tiny |" in table and "| torch cl3d | " in table and "| tf graph | " in table
    start = table.split("## forward, batch 2: first call, s (start-up)", 1)[1].split("##")[0]
    first = next(r for r in models if r["framework"] == "tf" and r["stage"] == "forward")["first_call_s"]
    assert f"| tf graph | {first:.2f} |" in start
    for plot in ("throughput.png", "stages.png", "scaling.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"

    # the whole report as one page a browser opens offline: the tables, the plots inline, the machine
    page = (out / "report.html").read_text()
    tables = sum(line.startswith("|---") for line in table.splitlines())
    assert page.count("<table>") == tables > 0 and page.count('src="data:image/png;base64,') == 3
    assert "<dt>cpu</dt>" in page and "torch cl3d" in page and "http" not in page  # nothing fetched from elsewhere

    same = videoml("bench", "compare", str(out), str(out), "-o", str(tmp_path / "compare.html"))
    assert same.returncode == 0 and same.stdout.count("| 1.00x | within noise |") == 8
    assert (tmp_path / "compare.html").read_text().count("<td>within noise</td>") == 8


@pytest.mark.slow
def test_suite_data_cells_compare_prepared_videos_and_repeated_clips_against_the_step(tmp_path):
    out = tmp_path / "out"
    config = _config(tmp_path, frameworks={"torch": ["cl3d"]}, batch_sizes=[4], stages=["train_step", "fit_step",
                     "decode", "decode_cached", "pipeline"], encodings=["original", "prepared"], clips_per_video=[1, 2])
    result = videoml("bench", "suite", "--config", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GPU available" not in result.stdout + result.stderr  # Lightning's lines stay out of the fit_step cell
    rows = {r["name"]: r for r in json.loads((out / "suite.json").read_text())["rows"]}
    data = ("", "-k2", "-prepared", "-prepared-k2")
    assert set(rows) == {"model-torch-x3d_tiny-cl3d-train_step-b4", "model-torch-x3d_tiny-cl3d-fit_step-b4",
                         *(f"{kind}-x3d_tiny-pyav{d}" for kind in ("decode", "decode_cached") for d in data),
                         *(f"pipeline-torch-x3d_tiny-cl3d-b4-w1{d}" for d in data)}
    fit = rows["model-torch-x3d_tiny-cl3d-fit_step-b4"]
    assert fit["clips_per_s"] > 0 and fit["first_call_s"] > 0 and fit["compute_ceiling_fraction"] > 0
    for d in data:
        decode, cached = rows[f"decode-x3d_tiny-pyav{d}"], rows[f"decode_cached-x3d_tiny-pyav{d}"]
        # clips cut from the videos kept in memory cost less than decoding them, which the first epoch does whole
        assert 0 < cached["cpu_ms_per_clip"] < decode["cpu_ms_per_clip"] < cached["fill_cpu_ms_per_clip"], d
        pipeline = rows[f"pipeline-torch-x3d_tiny-cl3d-b4-w1{d}"]
        assert 0 < pipeline["pipeline_to_step"] == pytest.approx(
            pipeline["clips_per_s"] / rows["model-torch-x3d_tiny-cl3d-train_step-b4"]["clips_per_s"])
    prepared = json.loads((tmp_path / "videos" / "suite-12x10s-prepared-s88" / "prepare.json").read_text())
    assert prepared["complete"] and prepared["videos"] == 8 and prepared["config"]["settings"]["short_side"] == 88
    assert "prepared data, 2 clips/video" in (out / "table.md").read_text()
    # the plan of a cached run on this CPU: the step inside fit's loop, decoding whole videos, then clips from memory
    plan = videoml("bench", "plan", str(out), "--model", "x3d_tiny", "--videos", "100", "--encoding", "prepared",
                   "--gpu", "measured", "--gpus", "1", "--cpu-cores-per-gpu", "2", "--decoded-cache", "true")
    assert plan.returncode == 0, plan.stderr
    for source in ("model-torch-x3d_tiny-cl3d-fit_step-b4", "decode_cached-x3d_tiny-pyav-prepared"):
        assert source in plan.stdout, plan.stdout


def _runs(folder, rates):
    (folder / "runs").mkdir(parents=True)
    for name, seconds in rates.items():
        write_run(Run(name, Cell("model", model=name), seconds, summarize(seconds, 8), items_per_step=8), folder)


def test_compare_flags_changes_beyond_the_noise(tmp_path):
    _runs(tmp_path / "a", {"x": [0.10, 0.101, 0.099, 0.1], "y": [0.2, 0.21, 0.19, 0.2], "gone": [0.1] * 3})
    _runs(tmp_path / "b", {"x": [0.05, 0.051, 0.049, 0.05], "y": [0.2, 0.205, 0.195, 0.21]})
    result = videoml("bench", "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert "| x | 80.00 | 160.00 | 2.00x | faster |" in result.stdout
    assert "| y | 40.00 |" in result.stdout and "within noise" in result.stdout
    assert "in one folder only: gone" in result.stdout


def test_a_noisy_measurement_is_refused_with_the_reason():
    stats = summarize([0.1, 0.1, 0.2, 0.3, 0.1], 4)
    with pytest.raises(TooNoisy, match=r"model-x: too noisy to report \(spread 100% of the median over 5 rounds"):
        check_noise(stats, "model-x", Timing(max_spread=0.25))
    check_noise(stats, "model-x", Timing(max_spread=None))


@pytest.mark.slow
def test_a_noisy_suite_stops_with_one_line(tmp_path):
    config = _config(tmp_path, stages=["forward"], frameworks={"torch": ["fp32"]},
                     timing={"warmup": 0, "steps": 1, "repeats": 5, "max_spread": 0.0})
    result = videoml("bench", "suite", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "the torch worker stopped: model-torch-x3d_tiny-fp32-forward-b2: too noisy to report" in result.stderr


@pytest.mark.parametrize("change, message", [
    ({"frameworks": {"jax": ["jit"]}}, "unknown framework 'jax'"),
    ({"stages": ["forward", "backward"]}, "unknown stages ['backward']"),
    ({"frameworks": {"tf": ["turbo"]}}, "unknown tf mode 'turbo'"),
    ({"colour": "red"}, "Option 'colour' is not accepted"),
    ({"reading": {"clips": 0}}, "these must be >= 1: reading.clips (got 0)"),
])
def test_bad_suite_configs_are_one_line_errors(tmp_path, change, message):
    result = videoml("bench", "suite", "--config", str(_config(tmp_path, **change)), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_short_steps_get_rounds_of_at_least_min_round_s():
    calls = []

    def step():
        calls.append(1)
        time.sleep(0.002)

    rounds = time_rounds(step, Timing(warmup=1, steps=2, repeats=3, min_round_s=0.05))
    assert len(rounds) == 3 and all(0.002 <= r < 0.01 for r in rounds)
    per_round = (len(calls) - 2) / 3  # the warm-up call and the one that sizes the rounds
    assert per_round >= 10  # 2 ms calls, 50 ms rounds (at most 25 when sleeping is exact)


def test_round_robin_times_a_round_of_each_step_in_turn():
    log = []
    steps = [lambda: log.append("a"), lambda: (log.append("b"), time.sleep(0.001))]
    a, b = round_robin(steps, Timing(warmup=1, steps=2, repeats=3))
    assert log == ["a", "b"] + ["a", "a", "b", "b"] * 3  # warm-up, then one round of each in turn
    assert len(a.seconds) == len(b.seconds) == 3 and a.calls == b.calls == 6
    assert all(s >= 0.001 for s in b.seconds) and b.cpu_s >= 0 and max(a.seconds) < min(b.seconds)


@pytest.mark.parametrize("path", sorted(Path("configs/bench").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_suite_config_is_valid_and_measures_something(path):
    fields = yaml.safe_load(path.read_text())
    config = SuiteConfig(**{**fields, "reading": Reading(**fields.get("reading", {})),
                            "inference": Inference(**fields.get("inference", {}))})
    config.check(str(path))
    assert sum(len(config.cells(framework)) for framework in config.frameworks) > 0


@pytest.mark.parametrize("mode, why", [
    ("cl3d", "in separate passes (BatchNorm, activations, residual adds) that TensorFlow's graph optimiser fuses into "
             "the convolutions: compare the compile mode"),
    ("cl3d+compile", "in Inductor's fused passes (BatchNorm, activations, residual adds) that it does not fold into "
                     "the convolutions")])
def test_a_pytorch_step_that_trails_is_explained_from_its_profile(tmp_path, mode, why):
    """Where PyTorch's best step trails TensorFlow's, the note says where its time goes and what is left to try: the
    compile mode, unless the best already is compiled."""
    operators = [["aten::convolution_backward", 0.45], ["Inductor's compiled graphs", 0.3], ["aten::mkldnn_convolution",
                                                                                            0.15]]
    runs = [(Cell("model", "torch", "r2plus1d_r50", mode, stage="train_step", batch_size=2), 2 / 0.58, operators),
            (Cell("model", "tf", "r2plus1d_r50", "graph", stage="train_step", batch_size=2), 2 / 0.64, None)]
    (tmp_path / "runs").mkdir()
    for cell, seconds, profile in runs:
        write_run(Run(cell.name, cell, [seconds] * 3, summarize([seconds] * 3, 2), items_per_step=2,
                      operators=profile), tmp_path)
    config = {"models": ["r2plus1d_r50"], "frameworks": {"torch": [mode], "tf": ["graph"]}, "batch_sizes": [2]}
    notes = summarize_suite(tmp_path, config, {"flops_per_clip": {}, "peaks": {}}).notes
    [note] = [n for n in notes if "TensorFlow leads" in n]
    assert note.startswith(f"r2plus1d_r50 train_step: TensorFlow leads, best modes torch {mode} 0.6 vs tf graph 0.6")
    assert note.endswith(f"(0.91x); PyTorch's step: aten::convolution_backward 45%, Inductor's compiled graphs 30%, "
                         f"aten::mkldnn_convolution 15%; 40% of it outside convolutions and matrix products, {why}")
