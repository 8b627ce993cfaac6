"""The fast inference graph (`--optimize`, on by default on the CPU): BatchNorm folded into the convolutions, the
same outputs as the model on real clips, checked on the first batch, and the model itself when the check fails."""

import logging
import subprocess
import time
import sys

import pytest
import torch

from videoml.infer.clips import VideoClips
from videoml.infer.predictor import load_predictor, resolve_precision
from videoml.models.optimize import TOLERANCE
from videoml.models.registry import build_model, model_input
from videoml.models.weights import ModelCard, save_checkpoint


def _checkpoint(name, folder):
    torch.manual_seed(0)
    model = build_model(name, 4).eval()
    for module in model.modules():  # BatchNorm statistics as training leaves them, not the identity of a new model
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    card = ModelCard(name, ("a", "b", "c", "d"), model_input(name), views=3)
    save_checkpoint(model, card, folder / "model.ckpt")
    return folder / "model.ckpt", card


@pytest.fixture(scope="module", params=["x3d_tiny", "slow_tiny", "r2plus1d_tiny"])
def trained(request, tmp_path_factory):
    return _checkpoint(request.param, tmp_path_factory.mktemp("model"))


def _clips(card, small_synth):
    video = small_synth.root / small_synth.manifest()[0]["path"]
    return VideoClips([video], card.input, views=3, crops=1)[0].video


def test_the_fast_graph_folds_batchnorm_and_gives_the_models_outputs(trained, small_synth):
    path, card = trained
    eager, fast = load_predictor(path, optimize=False), load_predictor(path)
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in eager.forward.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fast.forward.modules())  # folded
    clips = _clips(card, small_synth)
    expected = eager(clips)
    torch.testing.assert_close(fast(clips), expected, atol=1e-4 * float(expected.abs().max()), rtol=0)
    assert fast.reference is None  # checked on its first call, trusted from then on
    torch.testing.assert_close(fast(clips), expected, atol=1e-4 * float(expected.abs().max()), rtol=0)


def test_a_fast_graph_that_differs_is_dropped_with_one_warning(trained, small_synth, caplog):
    path, card = trained
    fast = load_predictor(path)
    with torch.no_grad():
        next(fast.forward.parameters()).mul_(1.5)  # a folding gone wrong
    clips = _clips(card, small_synth)
    with caplog.at_level(logging.WARNING, logger="videoml.infer"):
        outputs = fast(clips)
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("the fast inference graph differs from the model by ")
    assert warning.endswith("; running the model as it is")
    torch.testing.assert_close(outputs, load_predictor(path, optimize=False)(clips))
    assert fast.forward is not None and fast.reference is None
    torch.testing.assert_close(fast(clips), outputs)  # the model as it is, from then on


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_where_the_cpu_computes_it_and_float32_elsewhere(trained, small_synth, tmp_path,
                                                                                   monkeypatch, native):
    path, card = trained
    monkeypatch.setattr("videoml.runtime.native_bf16", lambda: native)
    auto, fp32 = load_predictor(path, precision="auto"), load_predictor(path)
    assert auto.precision == ("bf16-mixed" if native else "32-true")
    clips = _clips(card, small_synth)
    expected = fp32(clips)
    outputs = auto(clips)  # checked against the float32 model on the first batch, and kept
    assert auto.precision == ("bf16-mixed" if native else "32-true") and auto.reference is None
    largest = float(expected.abs().max())
    torch.testing.assert_close(outputs, expected, atol=2e-2 * largest, rtol=0)
    moved = float((outputs - expected).abs().max())
    assert moved > 0 if native else moved == 0  # bfloat16 ran; or the same float32 graph
    assert resolve_precision(tmp_path / "model.pt2", "cpu", "auto") == "32-true"  # an export runs as exported


def test_a_lower_precision_that_moves_the_answers_too_far_falls_back_to_float32(trained, small_synth, caplog,
                                                                                monkeypatch):
    path, card = trained
    monkeypatch.setitem(TOLERANCE, "bf16-mixed", 1e-7)  # as a model whose logits bfloat16 moves too far
    bf16, clips = load_predictor(path, precision="bf16-mixed"), _clips(card, small_synth)
    with caplog.at_level(logging.WARNING, logger="videoml.infer"):
        outputs = bf16(clips)
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("the fast inference graph at bf16-mixed differs from the float32 model by ")
    assert warning.endswith("; running the model in float32")
    expected = load_predictor(path, optimize=False)(clips)
    torch.testing.assert_close(outputs, expected)
    assert bf16.precision == "32-true" and bf16.reference is None
    torch.testing.assert_close(bf16(clips), expected)  # the float32 model from then on


@pytest.mark.slow
def test_the_compiled_graph_gives_the_models_outputs(small_synth, tmp_path):
    path, card = _checkpoint("x3d_tiny", tmp_path)
    clips = _clips(card, small_synth)
    expected = load_predictor(path, optimize=False)(clips)
    compiled = load_predictor(path, compile=True)  # folded, then compiled by Inductor with frozen weights
    assert type(compiled.forward).__name__ == "OptimizedModule"
    torch.testing.assert_close(compiled(clips), expected, atol=1e-4 * float(expected.abs().max()), rtol=0)
    assert compiled.forward is not compiled.reference and compiled.reference is None  # verified, kept


def test_a_fast_graph_that_fails_is_dropped_with_one_warning(small_synth, tmp_path, caplog, monkeypatch):
    def broken(model):  # as torch.compile fails on a machine without a C++ compiler: on the first call
        def forward(video):
            raise RuntimeError("InductorError: no working C++ compiler found\nmore lines")
        return forward

    monkeypatch.setattr("videoml.infer.predictor.compiled", broken)
    path, card = _checkpoint("x3d_tiny", tmp_path)
    predictor, clips = load_predictor(path, compile=True), _clips(card, small_synth)
    with caplog.at_level(logging.WARNING, logger="videoml.infer"):
        outputs = predictor(clips)
    assert [r.getMessage() for r in caplog.records] == [
        "the fast inference graph failed on the first batch (RuntimeError: InductorError: no working C++ compiler "
        "found); running the model as it is"]
    torch.testing.assert_close(outputs, load_predictor(path, optimize=False)(clips))
    torch.testing.assert_close(predictor(clips), outputs)  # the model as it is, from then on


def test_compiling_says_nothing_about_cuda_on_a_cpu_machine():
    """Inductor imports torch.utils.cpp_extension on a compiled model's first call, which logs "No CUDA runtime is
    found" where there is none; a fresh process, so that nothing imported it before."""
    code = ("import torch\nfrom videoml.models.optimize import compiled\nmodel = compiled(torch.nn.Linear(3, 2))\n"
            "with torch.no_grad():\n    print(model(torch.ones(1, 3)).shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip() == "torch.Size([1, 2])", result.stderr[-3000:]
    assert result.stderr == ""


def test_auto_precision_gives_way_to_float32_where_this_cpu_runs_it_slower(trained, small_synth, monkeypatch, caplog):
    """bfloat16 autocast on a CPU whose kernels for it are slow (emulated, or a layer without a fast kernel): the
    first batch, timed against the float32 model's, says so."""
    path, card = trained
    monkeypatch.setattr("videoml.runtime.native_bf16", lambda: True)
    auto = load_predictor(path, precision="auto")
    fast = auto.forward

    def slow(video):
        time.sleep(1.0)
        return fast(video)

    auto.forward, clips = slow, _clips(card, small_synth)
    with caplog.at_level(logging.WARNING, logger="videoml.infer"):
        outputs = auto(clips)
    assert not caplog.records and auto.precision == "32-true"
    torch.testing.assert_close(outputs, load_predictor(path, optimize=False)(clips), atol=1e-4 * float(
        outputs.abs().max()), rtol=0)
    assert load_predictor(path, precision="bf16-mixed").timed is False  # asked for: kept, however slow
