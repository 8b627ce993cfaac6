import pytest

from videoml.bench.infer import InferBench, run, table, write


@pytest.mark.slow
def test_infer_bench_compares_infer_with_the_tutorial_loop_and_the_model(tmp_path):
    bench = InferBench(data=str(tmp_path / "data"), out=str(tmp_path / "out"), model="x3d_tiny", views=2, videos=3,
                       baseline_videos=2, batch_size=4, num_workers=1, repeats=2)
    results = run(bench)
    rows = {r["scenario"]: r for r in results["rows"]}
    assert set(rows) == {"model_only", "videoml_infer", "pytorchvideo_loop"}
    infer, loop, model = rows["videoml_infer"], rows["pytorchvideo_loop"], rows["model_only"]
    assert infer["stats"]["rounds"] == loop["stats"]["rounds"] == 2 and model["stats"]["rounds"] == 2
    assert infer["stats"]["clips_per_s"] == pytest.approx(infer["videos_per_s"] * 2)
    assert infer["stats"]["clips_per_s"] == pytest.approx(3 * 2 / infer["stats"]["median_s"])
    assert loop["stats"]["clips_per_s"] == pytest.approx(2 * 2 / loop["stats"]["median_s"])
    assert model["stats"]["clips_per_s"] == pytest.approx(4 / model["stats"]["median_s"])
    # the ratios are rounded to 2 and 3 decimals
    assert infer["speedup_vs_pytorchvideo"] == pytest.approx(infer["videos_per_s"] / loop["videos_per_s"], abs=0.006)
    assert infer["clips_vs_model_only"] == pytest.approx(
        infer["stats"]["clips_per_s"] / model["stats"]["clips_per_s"], abs=0.0006)
    out = write(results, bench.out)
    assert (out / "infer.json").is_file() and "| videoml_infer |" in (out / "infer.md").read_text() == table(results) + "\n"
