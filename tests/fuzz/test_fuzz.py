"""A fuzz campaign: mutated real and synthetic videos through `videoml data check`, `infer`, `extract` and `data
prepare`. No hang, no crash, every input accounted for, exit codes as documented.

VIDEOML_FUZZ_SEED and VIDEOML_FUZZ_CASES change the campaign (defaults: 0 and 240). Each case is named after its
source and seed; a case that ever failed goes into tests/fuzz/regressions.json (source file and seed, remade by the
mutator from the corpus), which every run checks too.
"""

import json
import shutil
from pathlib import Path

import pytest
from helpers import videoml
from mutate import CASES, SEED, mutate

from videoml.data.corpus import corpus

REGRESSIONS = json.loads((Path(__file__).parent / "regressions.json").read_text())
# Small real files of different containers and codecs (the corpus, when it can be fetched here)
REAL = ["Force_constante.avi", "alea.mpg", "progressbar_fill.ogv", "3gp.3gp", "flv.flv", "mov.mov", "webm.webm",
        "realshort.mp4", "dummy_video.avi", "edit_list.mp4", "joined.ts", "vp9.webm", "rotate_90.mp4"]


@pytest.fixture(scope="module")
def cases(small_synth, tmp_path_factory):
    sources = sorted((small_synth.root / "videos").rglob("*.mp4"))[:6]
    if shutil.which("apt-get") and shutil.which("ffmpeg"):
        real = {p.name: p for p in corpus()}
        sources += [real[name] for name in REAL]
    folder = tmp_path_factory.mktemp("fuzz")
    by_name = {p.name: p for p in sources}
    jobs = [(sources[case % len(sources)], SEED * 100_003 + case) for case in range(CASES)]
    jobs += [(by_name[r["source"]], r["seed"]) for r in REGRESSIONS if r["source"] in by_name]
    made = {}
    for source, seed in jobs:
        data, what, extension = mutate(source.read_bytes(), seed)
        path = folder / f"{source.stem}_seed{seed}{extension or source.suffix}"
        path.write_bytes(data)
        made[str(path)] = f"{source.name}, seed {seed}: {what}"
    return folder, made


def _explain(made: dict, paths) -> str:
    return "\n".join(f"{p}: {made.get(p, '?')}" for p in list(paths)[:20])


@pytest.mark.slow
def test_data_check_accounts_for_every_mutated_file(cases, tmp_path):
    folder, made = cases
    report = tmp_path / "check.jsonl"
    result = videoml("data", "check", str(folder), "--format", "jsonl", "-o", str(report), "--num-workers", "2",
                     "--decode-timeout", "30")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr[-3000:]
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(made)
    unexplained = [r["path"] for r in records if not r["ok"] and not r["error"]]
    assert not unexplained, _explain(made, unexplained)


@pytest.mark.slow
@pytest.mark.parametrize("command, records", [("infer", "out.jsonl"), ("extract", "out.jsonl/index.jsonl")])
def test_a_model_run_accounts_for_every_mutated_file(cases, checkpoint, tmp_path, command, records):
    folder, made = cases
    result = videoml(command, str(folder), "-m", str(checkpoint), "-o", str(tmp_path / "out.jsonl"),
                     "--num-workers", "2", "--decode-timeout", "30")
    assert result.returncode in (0, 3) and "Traceback" not in result.stderr, result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / records).read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(made)
    assert all(r["status"] == "ok" or r["error"] for r in records)


@pytest.mark.slow
def test_data_prepare_accounts_for_every_mutated_file(cases, tmp_path):
    folder, made = cases
    sources = sorted(made)[: max(len(made) // 4, 1)]  # a quarter: each is re-encoded
    listing = tmp_path / "all.csv"
    listing.write_text("".join(f"{p} 0\n" for p in sources))
    (tmp_path / "classes.txt").write_text("any\n")
    out = tmp_path / "prepared"
    result = videoml("data", "prepare", str(listing), str(out), "--num-workers", "2", "--decode-timeout", "60",
                     "--max-bad-fraction", "1")
    assert result.returncode in (0, 3) and "Traceback" not in result.stderr, result.stderr[-3000:]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["source"] for r in records) == sources
    bad = {r["source"] for r in records if not r["ok"]}
    assert all(r["error"] for r in records if not r["ok"]), _explain(made, bad)
    listed = (out / "bad.txt").read_text() if (out / "bad.txt").exists() else ""
    assert all(source in listed for source in bad)
    prepared = (out / "all.csv").read_text().splitlines()
    assert len(prepared) == len(sources) - len(bad)  # every good one listed for training, once
