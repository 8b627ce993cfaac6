"""The fast inference graph (`--optimize`, on by default on the CPU): BatchNorm folded into the convolutions, the
same outputs as the model on real clips, checked on the first batch, and the model itself when the check fails."""

import logging

import pytest
import torch

from videoml.infer.clips import VideoClips
from videoml.infer.predictor import load_predictor
from videoml.models.registry import build_model, model_input
from videoml.models.weights import ModelCard, save_checkpoint


@pytest.fixture(scope="module", params=["x3d_tiny", "slow_tiny", "r2plus1d_tiny"])
def trained(request, tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(request.param, 4).eval()
    for module in model.modules():  # BatchNorm statistics as training leaves them, not the identity of a new model
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    card = ModelCard(request.param, ("a", "b", "c", "d"), model_input(request.param), views=3)
    path = tmp_path_factory.mktemp("model") / "model.ckpt"
    save_checkpoint(model, card, path)
    return path, card


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
