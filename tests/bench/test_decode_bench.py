import json
import shutil
import subprocess
import sys

import pytest

from videoml.bench.decode import DecodeBench, run, table, write


@pytest.mark.slow
def test_decode_bench_measures_every_scenario_and_writes_results(tmp_path):
    bench = DecodeBench(data=str(tmp_path / "data"), out=str(tmp_path / "out"), backends=("pyav", "decord"),
                        clips=3, repeats=1, views=3, memory_reads=10, short_seconds=2, long_seconds=4,
                        train_videos_per_class=2, train_seconds=2)
    results = run(bench)
    out = write(results, bench.out)

    training = [r for r in results["rows"] if r["scenario"] == "train_clip"]
    rows = [r for r in results["rows"] if r["scenario"] != "train_clip"]
    encodings = ("original", "prepared", "prepared, no B-frames", "prepared, no fastdecode", "prepared, all key frames")
    assert [(r["data"], r["encoding"], r["clips_per_video"]) for r in training] == [
        (d, e, k) for d in ("synth", "kinetics_like") for e in encodings for k in (1, 2, 4)]
    assert all(r["cpu_ms_per_clip"] > 0 and r["bytes"] > 0 for r in training)
    assert [r["ratio_to_original"] for r in training if r["encoding"] == "original" and r["clips_per_video"] == 1] \
        == [1.0, 1.0]
    real = shutil.which("ffmpeg") and shutil.which("apt-get")  # the corpus's real files (tests/data/test_conformance)
    clip_scenarios = ("random_clip", "random_clip_long") + (("random_clip_real",) if real else ())
    expected = {(s, b) for s in clip_scenarios + ("open_random_clip", "test_views", "memory")
                for b in ("pyav", "decord")}
    expected |= {("open_random_clip", "pytorchvideo"), ("test_views", "pytorchvideo")}
    if shutil.which("ffmpeg"):
        expected |= {(s, "ffmpeg (ceiling)") for s in clip_scenarios}
    assert {(r["scenario"], r["backend"]) for r in rows} == expected
    for r in rows:
        if r["scenario"] == "memory":
            assert r["reads"] == 8 and r["rss_mb"] > 0
            continue
        if r["backend"] == "ffmpeg (ceiling)":
            assert r["ceiling"]["clips_per_s"] > 0 and r["ceiling"]["frames_decoded_per_clip"] >= 8
            continue
        stats = r["stats"]
        assert r["unit"] == ("video" if r["scenario"] == "test_views" else "clip") and stats["rounds"] == 1
        assert stats["clips_per_s"] > 0 and stats["iqr_s"][0] <= stats["median_s"] <= stats["iqr_s"][1]
        if r["backend"] in ("pyav", "decord") and r["scenario"] in ("open_random_clip", "test_views"):
            assert r["speedup_vs_pytorchvideo"] > 0
        if r["backend"] in ("pyav", "decord") and r["scenario"].startswith("random_clip") and shutil.which("ffmpeg"):
            assert 0 < r["ratio_to_ceiling"]

    assert json.loads((out / "decode.json").read_text()) == json.loads(json.dumps(results))
    assert results["environment"]["torch"] and results["config"]["clips"] == 3
    markdown = (out / "decode.md").read_text().splitlines()
    assert len(markdown) == 2 + len(rows) + 5 + len(training) and markdown == table(results).splitlines()


def test_bench_decode_rejects_unknown_backends(tmp_path):
    result = subprocess.run([sys.executable, "-m", "videoml", "bench", "decode", "--backends", "pyav,ffmpeg",
                             "--data", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown backends ['ffmpeg']" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
