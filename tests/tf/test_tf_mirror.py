"""The Keras mirrors compute what the PyTorch models compute, from the same weights, in evaluation and training."""

import copy

import numpy as np
import pytest
import torch

import keras  # noqa: I001  (after videoml.tf, see conftest)
from videoml.data.transforms import pack_pathways
from videoml.errors import VideomlError
from videoml.models.registry import build_model, model_input
from videoml.tf.mirror import build_keras_model, mirror, port_weights, weight_pairs
from videoml.tf.optim import make_optimizer

TINY = ["x3d_tiny", "slow_tiny", "r2plus1d_tiny"]
# Full-size architectures at a reduced clip (the mirrors, like the models, take any size): every family's stem,
# stage pooling, grouped / depthwise convolutions and heads, in a CPU test's time.
FULL = {"x3d_xs": (4, 96), "slow_r50": (4, 96), "c2d_r50": (4, 96), "i3d_r50": (4, 96), "r2plus1d_r50": (8, 96),
        "csn_r101": (8, 64)}


def _model(name, classes=5, **options):
    """A model with random BatchNorm statistics and affine terms, so every layer's weights matter to the logits."""
    torch.manual_seed(0)
    model = build_model(name, classes, **options)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


def _clips(batch, frames, crop, seed=1):
    return torch.randn(batch, 3, frames, crop, crop, generator=torch.Generator().manual_seed(seed))


def _channels_last(clips: torch.Tensor) -> np.ndarray:
    return clips.permute(0, 2, 3, 4, 1).numpy()


def _eval_difference(name, frames, crop, relative=False):
    """max |Keras - PyTorch| of the logits (``relative``: over the largest logit)."""
    model = _model(name).eval()
    alpha = model_input(name).slowfast_alpha
    twin = mirror(model, pathways=2 if alpha else 1)
    port_weights(model, twin)
    clips = pack_pathways(_clips(2, frames, crop), alpha)  # SlowFast: [slow, fast]
    with torch.no_grad():
        expected = model(clips).numpy()
    got = twin([_channels_last(c) for c in clips] if alpha else _channels_last(clips), training=False).numpy()
    assert got.shape == expected.shape == (2, 5)
    assert np.abs(expected).max() > 0.05  # logits that depend on the weights, not a near-zero head
    return np.abs(got - expected).max() / (np.abs(expected).max() if relative else 1.0)


@pytest.mark.parametrize("name", TINY)
def test_tiny_mirrors_give_the_same_logits(name):
    spec = model_input(name)
    assert _eval_difference(name, spec.frames, spec.crop) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_size_mirrors_give_the_same_logits(name):
    assert _eval_difference(name, *FULL[name]) <= 1e-4


@pytest.mark.slow
def test_the_slowfast_mirror_gives_the_same_logits():
    """Both pathways, the lateral fast-to-slow connections and the pooled concatenation, at SlowFast-R50's canonical
    clip (its head pools a fixed 8x7x7 / 32x7x7 window). With random BatchNorm statistics its logits reach ~100, so
    the bound is relative to the largest."""
    assert _eval_difference("slowfast_r50", 32, 224, relative=True) <= 1e-4


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_two_training_steps_move_the_weights_the_same_way(name, optimizer):
    """Two steps (the second uses the momentum / Adam moments of the first) from the same weights on the same batch,
    BatchNorm in training mode, with PyTorchVideo's own initialisation."""
    _two_steps_alike(name, optimizer)


def test_gradient_clipping_by_norm_clips_alike():
    """Lightning's gradient_clip_val (torch's clip_grad_norm_ over all parameters) and the twin's global_clipnorm, at
    a norm the gradients exceed."""
    _two_steps_alike("x3d_tiny", "sgd", clip=0.05)


def _two_steps_alike(name, optimizer, clip=None):
    torch.manual_seed(0)
    model = build_model(name, 5, dropout_rate=0.0)
    start = copy.deepcopy(model.state_dict())
    twin = mirror(model)
    port_weights(model, twin)
    spec = model_input(name)
    clips, labels = _clips(8, spec.frames, spec.crop), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    options = dict(momentum=0.9, nesterov=True, weight_decay=1e-3)
    if optimizer == "sgd":
        torch_opt = torch.optim.SGD(model.parameters(), lr=0.05, **options)
    else:
        torch_opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    model.train()
    for _ in range(2):
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(model(clips), labels).backward()
        if clip:
            assert torch.nn.utils.clip_grad_norm_(model.parameters(), clip) > 2 * clip  # it does clip
        torch_opt.step()
    twin.compile(optimizer=make_optimizer(optimizer, 0.05 if optimizer == "sgd" else 1e-3, clip_value=clip,
                                          **options),
                 loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    for _ in range(2):
        twin.train_on_batch(_channels_last(clips), keras.utils.to_categorical(labels.numpy(), 5))

    moved, differences = [], []
    for key, tensor, variable, layout in weight_pairs(model, twin):
        if "running" in key:
            continue  # PyTorch's running variance is unbiased, Keras' biased (videoml.tf.mirror)
        after, before = (t.numpy() if layout is None else layout(t.numpy()) for t in (tensor, start[key]))
        moved.append(np.abs(after - before).ravel())
        differences.append(np.abs(variable.numpy() - after).ravel())
    moved, differences = np.concatenate(moved), np.concatenate(differences)
    assert moved.max() > 1e-4
    if optimizer == "sgd":  # measured: 2e-6 (x3d_tiny), 6e-6 (slow_tiny), 3e-3 (r2plus1d_tiny, the least stable)
        assert differences.max() <= 1e-2 * moved.max()
    else:  # Adam's first steps are ~lr * sign(g): weights whose gradients are at float32 noise level move by lr in
        # either framework, in either direction (max difference measured: 2e-3 to 4e-2 of the largest move). On
        # average the moves agree: measured 1e-5 to 2e-5 of the mean move.
        assert differences.mean() <= 1e-3 * moved.mean()


def test_the_weight_map_must_be_one_to_one():
    source, other = _model("x3d_tiny"), _model("slow_tiny")
    with pytest.raises(VideomlError, match="not one to one: PyTorch tensors without a Keras variable: .*blocks"):
        port_weights(source, mirror(other))
    with pytest.raises(VideomlError, match=r"proj.weight: PyTorch \(3, 256\) does not fit Keras"):
        port_weights(_model("x3d_tiny", classes=3), mirror(source))


def test_models_without_a_mirror_are_refused_by_name(tmp_path):
    with pytest.raises(VideomlError, match="has no Keras mirror"):
        build_keras_model("mvit_base_16x4", 4)
    with pytest.raises(VideomlError, match="^r3d_18 is torchvision's; the Keras twin mirrors PyTorchVideo's"):
        build_keras_model("r3d_18", 4)
    transformers = pytest.importorskip("transformers")
    config = transformers.VideoMAEConfig(image_size=32, num_frames=2, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32)
    transformers.AutoModelForVideoClassification.from_config(config).save_pretrained(tmp_path)
    transformers.VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}) \
        .save_pretrained(tmp_path)
    with pytest.raises(VideomlError, match=r"^hf:.* is huggingface's; the Keras twin mirrors PyTorchVideo's"):
        build_keras_model(f"hf:{tmp_path}", 4)


def test_build_keras_model_starts_from_the_pytorch_initialisation():
    first = build_keras_model("x3d_tiny", 4, seed=3)
    second = build_keras_model("x3d_tiny", 4, seed=3)
    torch.manual_seed(3)
    reference = build_model("x3d_tiny", 4)
    kernel = first.get_layer("blocks.5.proj").kernel.numpy()
    np.testing.assert_array_equal(kernel, reference.blocks[5].proj.weight.detach().numpy().T)
    np.testing.assert_array_equal(kernel, second.get_layer("blocks.5.proj").kernel.numpy())


def test_the_rest_of_the_package_never_imports_tensorflow():
    import subprocess
    import sys

    code = ("import sys, videoml.cli, videoml.train.cli, videoml.infer.run, videoml.export, videoml.bench.model; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
