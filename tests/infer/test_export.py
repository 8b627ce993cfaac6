"""`videoml export`: every format verified, carrying its card, and `videoml infer` runs the exported files."""

import json

import pytest
import torch
from helpers import videoml

from videoml.errors import VideomlError
from videoml.export import verify
from videoml.infer.predictor import load_predictor


@pytest.fixture(scope="module")
def exported(checkpoint, small_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    sample = small_synth.root / small_synth.split_file("val").read_text().split()[0]
    result = videoml("export", str(checkpoint), "-f", "all", "-o", str(out), "--sample", str(sample))
    return out, result


@pytest.mark.slow
def test_export_all_writes_what_applies_verified_and_says_what_it_skipped(exported, small_synth):
    out, result = exported
    assert result.returncode == 0, result.stderr  # torchscript-script cannot be done for X3D: skipped, said why
    reports = {r["format"]: r for r in map(json.loads, result.stdout.splitlines())}  # stdout: JSON lines only
    assert sorted(reports) == ["onnx", "pt2", "torchscript-script", "torchscript-trace"]
    skipped = reports.pop("torchscript-script")
    assert skipped["skipped"].startswith("x3d_tiny cannot be scripted") and "\n" not in skipped["skipped"]
    for report in reports.values():
        assert report["max_abs_diff"] < 1e-3 and report["batch_checked"] == 3
    assert reports["onnx"]["opset"] == 18
    assert "torchscript-script: skipped: x3d_tiny cannot be scripted" in result.stderr
    assert "Traceback" not in result.stderr and "Expected a" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.pt2", "model.trace.ts"]
    for name in ("model.onnx", "model.pt2", "model.trace.ts"):
        predictor = load_predictor(out / name)
        assert predictor.classes == small_synth.classes and predictor.card.model == "x3d_tiny"


@pytest.mark.slow
def test_infer_runs_exported_models_like_the_checkpoint(exported, checkpoint, small_synth, tmp_path):
    out, _ = exported
    videos = [str(small_synth.root / line.split()[0]) for line in small_synth.split_file("test").read_text().splitlines()]
    results = {}
    for name, model in [("ckpt", checkpoint), *[(p.name, p) for p in sorted(out.iterdir())]]:
        path = tmp_path / f"{name}.jsonl"
        result = videoml("infer", *videos, "-m", str(model), "-o", str(path), "--num-workers", "0", "--precision",
                         "32-true")  # (an export runs as exported: float32)
        assert result.returncode == 0, (name, result.stderr[-3000:])
        results[name] = [json.loads(line) for line in path.read_text().splitlines()]
    for name, got in results.items():
        for a, b in zip(got, results["ckpt"]):
            assert [t["label"] for t in a["top_k"]] == [t["label"] for t in b["top_k"]], name
            assert [t["score"] for t in a["top_k"]] == pytest.approx([t["score"] for t in b["top_k"]], abs=1e-4)


@pytest.mark.slow
def test_export_optimize_writes_the_folded_graph_and_its_compiled_package_checked_against_the_model(
        exported, checkpoint, small_synth, tmp_path):
    sample = small_synth.root / small_synth.split_file("val").read_text().split()[0]
    result = videoml("export", str(checkpoint), "-f", "pt2,aoti", "-o", str(tmp_path), "--sample", str(sample),
                     "--optimize")
    assert result.returncode == 0, result.stderr[-3000:]
    reports = {r["format"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert all(r["max_abs_diff"] < 1e-3 for r in reports.values())  # against the model as trained, fresh process
    assert "CUDA" not in result.stderr  # (torch's build machinery warns of no CUDA runtime)
    operators = {name: {str(n.target) for n in torch.export.load(folder / "model.pt2").graph.nodes}
                 for name, folder in (("plain", exported[0]), ("optimized", tmp_path))}
    assert any("batch_norm" in op for op in operators["plain"])
    assert not any("batch_norm" in op for op in operators["optimized"])  # folded into the convolutions
    assert load_predictor(tmp_path / "model.pt2").card.optimized
    assert not load_predictor(exported[0] / "model.pt2").card.optimized
    # the AOTInductor package: compiled for this CPU, says so, and scores as the checkpoint does
    package = load_predictor(tmp_path / "model.aoti.pt2")
    assert package.kind == "aoti" and package.card.compiled == "aoti-cpu" and package.card.optimized
    videos = [str(small_synth.root / line.split()[0]) for line in small_synth.split_file("test").read_text().splitlines()]
    scores = {}
    for name, model in (("package", tmp_path / "model.aoti.pt2"), ("checkpoint", checkpoint)):
        out = tmp_path / f"{name}.jsonl"
        ran = videoml("infer", *videos, "-m", str(model), "-o", str(out), "--num-workers", "0")
        assert ran.returncode == 0 and "CUDA" not in ran.stderr, ran.stderr[-3000:]
        scores[name] = [[t["score"] for t in json.loads(line)["top_k"]] for line in out.read_text().splitlines()]
    assert len(scores["package"]) == len(videos)
    for got, want in zip(scores["package"], scores["checkpoint"]):
        assert got == pytest.approx(want, abs=1e-4)
    refused = videoml("infer", videos[0], "-m", str(tmp_path / "model.aoti.pt2"), "--device", "cuda",
                      "-o", str(tmp_path / "cuda.jsonl"))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def test_verification_rejects_outputs_that_differ(tmp_path):
    # an identity module checked against "eager" logits one more than its output: off by exactly 1
    path = tmp_path / "double.ts"
    torch.jit.script(torch.nn.Sequential(torch.nn.Identity())).save(str(path))
    video = torch.ones(2, 4)
    assert verify("torchscript-trace", path, video, video) == 0.0
    with pytest.raises(VideomlError, match="differ from eager PyTorch's by up to 1"):
        verify("torchscript-trace", path, video + 1, video)


def test_export_refuses_a_wrong_suffix_and_a_non_checkpoint(checkpoint, tmp_path):
    wrong = videoml("export", str(checkpoint), "-f", "onnx", "-o", str(tmp_path / "model.pt2"))
    assert wrong.returncode == 2 and "should end in .onnx" in wrong.stderr
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"junk")
    bad = videoml("export", str(junk), "-o", str(tmp_path))
    assert bad.returncode == 1 and f"{junk}: not a loadable checkpoint" in bad.stderr
