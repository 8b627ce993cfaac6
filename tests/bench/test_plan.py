"""`videoml bench plan`: measured stage rates -> epoch time, the bound, decoding cores and storage per GPU, and
inference videos per hour, from a results folder's runs and the table of measured GPU rates."""

import pytest
from helpers import videoml

from videoml.bench.measure import summarize
from videoml.bench.plan import GPU_RATES, Workload, infer, train
from videoml.bench.plan import plan as plan_text
from videoml.bench.records import Cell, Run, load_runs, write_run
from videoml.errors import UsageError


def _results(folder, device="test CPU"):
    """A model measured at 40 clips/s training and 200 forward, decoding at 25 CPU ms per clip; from videos kept in
    memory 5 ms, after 40 ms a clip decoding them in the first epoch."""
    (folder / "runs").mkdir(parents=True)
    machine = {"device": device, "cpu": "test CPU"}
    cells = [(Cell("model", "torch", "x3d_s", "cl3d", stage="train_step", batch_size=8), 8 / 40, {}),
             (Cell("model", "torch", "x3d_s", "cl3d", stage="forward", batch_size=8), 8 / 200, {}),
             (Cell("model", "tf", "x3d_s", "graph", stage="train_step", batch_size=8), 8 / 400, {}),  # not fit's
             (Cell("decode", model="x3d_s", backend="pyav", videos="kinetics_like", data="prepared",
                   clips_per_video=1), 1.0,
              {"cpu_ms_per_clip": 25.0}),
             (Cell("decode_cached", model="x3d_s", backend="pyav", videos="kinetics_like", data="prepared",
                   clips_per_video=1), 1.0, {"cpu_ms_per_clip": 5.0, "fill_cpu_ms_per_clip": 40.0})]
    for cell, seconds, extra in cells:
        items = cell.batch_size or 1
        write_run(Run(cell.name, cell, [seconds] * 3, summarize([seconds] * 3, items), items_per_step=items,
                      machine=machine, **extra), folder)
    return list(load_runs(folder).values())


def test_a_gpu_plan_is_bound_by_its_slowest_stage(tmp_path):
    runs = _results(tmp_path / "r")
    h100 = GPU_RATES["h100"]["x3d_s"]["fp32"]["train_step"]
    # 4 cores a GPU: 3 loader cores x 1000 / 25 ms = 120 clips/s, under the H100's train step
    work = Workload(videos=10_000, clips_per_video=1, model="x3d_s", gpus=8, cpu_cores_per_gpu=4,
                    dataset_gb=20.0, storage_gb_s=10.0)
    plan = train(runs, work)
    assert plan["stages"]["model"] == h100 and plan["stages"]["decoding"] == pytest.approx(120)
    assert plan["stages"]["storage"] == pytest.approx(10e9 / 8 / 2e6)  # 2 MB a clip, the node's bandwidth shared
    assert plan["bound"] == "decoding" and plan["epoch_s"] == pytest.approx(10_000 / (8 * 120))
    assert plan["decode_cores_per_gpu"] == pytest.approx(h100 * 0.025)
    assert plan["storage_gb_s"] == pytest.approx(8 * 120 * 2e6 / 1e9)
    # 32 cores a GPU: the model bounds, and the inference of 10 clips per video runs at the forward's rate
    roomy = Workload(videos=10_000, model="x3d_s", gpus=8, cpu_cores_per_gpu=32, views=10)
    assert train(runs, roomy)["bound"] == "model"
    assert infer(runs, roomy)["videos_per_hour_per_node"] == pytest.approx(
        3600 * 8 * min(GPU_RATES["h100"]["x3d_s"]["fp32"]["forward"], 31 * 1000 / 25) / 10)


def test_a_cpu_plan_adds_the_model_and_the_loader_on_the_same_cores(tmp_path):
    runs = _results(tmp_path / "r")
    plan = train(runs, Workload(videos=1000, model="x3d_s", gpu="measured", gpus=1, cpu_cores_per_gpu=2, epochs=3))
    # PyTorch's train step (40 clips/s, not TensorFlow's), delayed by the loader's whole 25 ms a clip: the model's
    # threads on both cores wait for the one the loader takes
    assert plan["stages"] == {"model": pytest.approx(40), "decoding": pytest.approx(1000 / 25)}
    assert plan["clips_per_s_per_gpu"] == pytest.approx(1 / (1 / 40 + 25 / 1000))
    assert plan["total_s"] == pytest.approx(3 * 1000 * (1 / 40 + 25 / 1000))


def test_the_command_prints_the_plan_and_refuses_what_it_cannot_plan(tmp_path):
    _results(tmp_path / "r")
    out = tmp_path / "plan.md"
    result = videoml("bench", "plan", str(tmp_path / "r"), "--videos", "240000", "--cpu-cores-per-gpu", "4", "-o",
                     str(out))
    assert result.returncode == 0, result.stderr
    assert "| decoding (bound) | 120.0 |" in result.stdout and "epoch: 4.2 min" in result.stdout  # 240000 / 960 s
    assert out.read_text() == result.stdout.rstrip("\n") + "\n"
    for args, words in ((["--model", "x3d_xs"], "no measured train_step rate for x3d_xs (fp32) on 'h100'"),
                        (["--clips-per-video", "4"], "no decode stage for x3d_s, prepared data, 4 clips per video"),
                        (["--encoding", "mp4"], "unknown encoding 'mp4'")):
        refused = videoml("bench", "plan", str(tmp_path / "r"), *args)
        assert refused.returncode != 0 and words in refused.stderr and "Traceback" not in refused.stderr, args


def test_with_the_decoded_videos_cached_only_the_first_epoch_decodes(tmp_path):
    runs = _results(tmp_path / "r")
    work = Workload(videos=1000, model="x3d_s", gpu="measured", gpus=1, cpu_cores_per_gpu=2, epochs=3,
                    decoded_cache=True)
    plan = train(runs, work)
    # the first epoch decodes whole videos into memory (40 ms a clip), later ones cut clips from them (5 ms)
    first, later = 1000 * (1 / 40 + 40 / 1000), 1000 * (1 / 40 + 5 / 1000)
    assert plan["epoch_s"] == pytest.approx(first) and plan["later_epoch_s"] == pytest.approx(later)
    assert plan["total_s"] == pytest.approx(first + 2 * later)
    # inference decodes its views whatever training caches
    assert infer(runs, work) == infer(runs, Workload(**{**vars(work), "decoded_cache": False}))
    # results without the model's forward plan the training and say why inference is left out
    text = plan_text([r for r in runs if r.cell.stage != "forward"], work)
    assert "with the decoded videos cached, later epochs" in text
    assert text.rstrip().endswith("- inference: not planned (the results have no forward of x3d_s at fp32: run "
                                  "videoml bench model --models x3d_s (or a suite with it) first)")
    # without the decode_cached stage measured, a cached plan says what to run
    with pytest.raises(UsageError, match="no decode_cached stage for x3d_s, prepared data, 1 clips per video"):
        train([r for r in runs if r.cell.kind != "decode_cached"], work)


def test_a_measured_fit_step_plans_the_training_of_the_device_it_was_measured_on(tmp_path):
    """The step inside videoml fit's loop (Lightning, collation, normalisation) plans training where measured; the
    bare train step where it is not."""
    runs = _results(tmp_path / "r")
    fit = Cell("model", "torch", "x3d_s", "cl3d", stage="fit_step", batch_size=8)
    write_run(Run(fit.name, fit, [8 / 32] * 3, summarize([8 / 32] * 3, 8), items_per_step=8,
                  machine={"device": "test CPU", "cpu": "test CPU"}), tmp_path / "r")
    work = Workload(videos=1000, model="x3d_s", gpu="measured", gpus=1, cpu_cores_per_gpu=2)
    plan = train(list(load_runs(tmp_path / "r").values()), work)
    assert plan["stages"]["model"] == pytest.approx(32) and plan["sources"]["model"].startswith(fit.name)
    assert train(runs, work)["stages"]["model"] == pytest.approx(40)
