import pytest

from videoml.bench.infer import InferBench, run, table, write


@pytest.mark.slow
def test_infer_bench_compares_infer_with_the_tutorial_loop_and_the_model(tmp_path):
    bench = InferBench(data=str(tmp_path / "data"), out=str(tmp_path / "out"), model="x3d_tiny", views=2, videos=3,
                       baseline_videos=2, batch_size=4, num_workers=1, repeats=2)
    results = run(bench)
    rows = {r["scenario"]: r for r in results["rows"]}
    assert set(rows) == {"model_only", "videoml_infer", "pytorchvideo_loop"}
    infer, loop = rows["videoml_infer"], rows["pytorchvideo_loop"]
    assert len(infer["seconds"]) == len(loop["seconds"]) == 2
    assert infer["clips_per_s"] == pytest.approx(infer["videos_per_s"] * 2, rel=0.01)
    # the ratios are rounded to 2 and 3 decimals, and the rates they are checked against too
    assert infer["speedup_vs_pytorchvideo"] == pytest.approx(infer["videos_per_s"] / loop["videos_per_s"], rel=0.01,
                                                             abs=0.01)
    assert infer["clips_vs_model_only"] == pytest.approx(infer["clips_per_s"] / rows["model_only"]["clips_per_s"],
                                                         rel=0.01, abs=0.001)
    out = write(results, bench.out)
    assert (out / "infer.json").is_file() and "| videoml_infer |" in (out / "infer.md").read_text() == table(results) + "\n"
