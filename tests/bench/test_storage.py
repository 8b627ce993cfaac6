"""`videoml bench shards`: files against shards, on the local disk and over loopback HTTP with a per-request
latency; the requests each epoch makes."""

import json

import pytest
from helpers import videoml

from videoml.data.datasets import labeled_paths

pytestmark = pytest.mark.slow


def test_files_and_shards_are_measured_locally_and_over_http_with_their_requests(small_prepared, tmp_path):
    out = tmp_path / "out"
    result = videoml("bench", "shards", str(small_prepared), "-o", str(out), "--workers", "1", "--batch-size", "2",
                     "--latency-ms", "0,20", "--max-mb", "0.005", "--epochs", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}
    where = {(r["cell"]["data"], r["cell"]["stage"]): r for r in runs.values()}
    assert set(where) == {(layout, place) for layout in ("files", "shards")
                          for place in ("local", "http+0ms", "http+20ms")}
    videos = len(labeled_paths(small_prepared / "train.csv"))
    shards = json.loads((out / "sets" / "shards" / "manifest.json").read_text())["splits"]["train"]["shards"]
    for (layout, place), run in where.items():
        assert run["timing"]["clips_per_epoch"] == videos and len(run["samples_s"]) == 2
        assert run["stats"]["clips_per_s"] > 0 and run["cpu_ms_per_clip"] > 0
        # one request a video, or a shard; a worker keeps its last two shards across epochs
        expected = videos if layout == "files" else len(shards)
        assert (run["reads"] == expected) if place == "local" else (expected - 2 <= run["reads"] <= expected), run
    table = (out / "table.md").read_text()
    assert table == result.stdout.split("\n\nresults in")[0] + "\n" and table.count("| shards |") == 3
