"""`videoml bench decode`: a preset of the suite whose cells read clips per backend, against FFmpeg's ceiling and
PyTorchVideo, and time training samples on original and prepared encodings."""

import json
import shutil

import pytest
from helpers import videoml

from videoml.data.decoding import backend_available

BACKENDS = tuple(b for b in ("pyav", "decord") if backend_available(b))


@pytest.mark.slow
def test_decode_bench_measures_every_scenario_and_writes_results(tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "decode", "--data", str(tmp_path / "data"), "--out", str(out), "--backends",
                     ",".join((*BACKENDS, "pytorchvideo")), "--clips", "3", "--repeats", "2", "--views", "3", "--memory-reads", "10",
                     "--short-seconds", "2", "--long-seconds", "4", "--train-videos-per-class", "2",
                     "--train-seconds", "2", "--encodings", "original,prepared,prepared-gop1", "--clips-per-video",
                     "1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    rows = {r["name"]: r for r in json.loads((out / "suite.json").read_text())["rows"]}
    assert set(rows) == set(runs)

    real = shutil.which("ffmpeg") and shutil.which("apt-get")  # the corpus's real files (tests/data/test_conformance)
    sets = ("short", "long") + (("real",) if real else ())
    reading = {f"random_clip-{b}-{s}" for b in BACKENDS for s in sets}
    reading |= {f"{k}-{b}-short" for k in ("open_random_clip", "test_views") for b in (*BACKENDS, "pytorchvideo")}
    reading |= {f"memory-{b}-short" for b in BACKENDS}
    encodings = ("", "-prepared", "-prepared-gop1")  # those asked for
    training = {f"decode-{model}-pyav-{videos}{e}{k}" for model, videos in (("x3d_tiny", "synth"), ("x3d_s",
                "kinetics_like")) for e in encodings for k in ("", "-k2")}
    assert set(runs) == reading | training

    for name, run in runs.items():
        if name.startswith("memory"):
            assert run["reads"] == 8 and run["rss_mb"] > 0 and "stats" not in run
            continue
        stats = run["stats"]
        assert len(run["samples_s"]) == 2 and run["items_per_step"] == (int(name[-1]) if name[-3:-1] == "-k" else 1)
        assert stats["clips_per_s"] == pytest.approx(run["items_per_step"] / stats["median_s"])
        assert run["unit"] == ("video" if name.startswith("test_views") else "clip")
    for name in reading:  # against PyTorchVideo reading the same clips, against FFmpeg decoding them
        if name.startswith(("open_random_clip", "test_views")) and "pytorchvideo" not in name:
            baseline = rows[name.replace("pyav", "pytorchvideo").replace("decord", "pytorchvideo")]
            assert rows[name]["speedup_vs_pytorchvideo"] == pytest.approx(
                rows[name]["clips_per_s"] / baseline["clips_per_s"])
        if name.startswith("random_clip") and shutil.which("ffmpeg"):
            ceiling = runs[name]["ceiling"]
            assert ceiling["frames_decoded_per_clip"] >= 8 and rows[name]["decode_ceiling_fraction"] == \
                pytest.approx(rows[name]["clips_per_s"] / ceiling["clips_per_s"])
    for name in training:  # CPU time per clip, against the original encoding at one clip per video
        original = rows[name.split("-pyav-")[0] + "-pyav-" + name.split("-pyav-")[1].split("-")[0]]
        assert rows[name]["cpu_ms_per_clip"] > 0 and rows[name]["bytes"] > 0
        assert rows[name].get("ratio_to_original", 1.0) == pytest.approx(
            original["cpu_ms_per_clip"] / rows[name]["cpu_ms_per_clip"])
    prepared = json.loads(next((tmp_path / "data").glob("train-synth-*-prepared-s*-gop1/prepare.json")).read_text())
    assert prepared["complete"] and prepared["config"]["settings"]["gop"] == 1
    table = (out / "table.md").read_text()
    assert "| test_views |  | pyav, short videos |" in table and "x PyTorchVideo" in table
    assert not (out / "throughput.png").exists()  # no model measured, no model plots


def test_bench_decode_rejects_unknown_backends(tmp_path):
    result = videoml("bench", "decode", "--backends", "pyav,ffmpeg", "--data", str(tmp_path))
    assert result.returncode == 2 and "unknown backends ['ffmpeg']" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
