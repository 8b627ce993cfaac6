import pytest
import torch

from videoml.models.registry import MODELS, build_model, model_input
from videoml.models.weights import classifier_name, load_weights
from videoml.runtime import memory_format_for, parse_device
from videoml.errors import VideomlError


def _input(name, batch=1):
    spec = model_input(name)
    clip = torch.randn(batch, 3, spec.frames, spec.crop, spec.crop)
    if spec.slowfast_alpha:
        return [clip[:, :, :: spec.slowfast_alpha], clip]
    return clip


def test_every_registry_entry_declares_its_input():
    for name, entry in MODELS.items():
        spec = entry.input
        assert spec.frames >= 1 and spec.stride >= 1 and spec.crop <= spec.eval_scale, name
        assert spec.train_scale[0] <= spec.train_scale[1], name


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, e in MODELS.items() if not n.endswith(("_tiny", "_frame"))
                                  and e.family == "pytorchvideo"])  # torchvision's: tests/models/test_torchvision.py
def test_every_architecture_builds_and_returns_logits_at_its_canonical_input(name):
    model = build_model(name, num_classes=7).train()
    with torch.no_grad():
        out = model(_input(name, batch=2))
    assert out.shape == (2, 7)
    # not probabilities: PyTorchVideo's default head Softmax is off
    assert not torch.allclose(out.sum(-1), torch.ones(2), atol=1e-3) or (out < 0).any()


def test_tiny_models_train_and_return_logits():
    for name in ("x3d_tiny", "x3d_tiny_frame"):
        model = build_model(name, num_classes=5).train()
        out = model(_input(name, batch=3))
        assert out.shape == (3, 5) and (out < 0).any()
        out.sum().backward()


def test_weights_round_trip_and_a_new_head_for_other_classes(tmp_path):
    source = build_model("x3d_tiny", num_classes=8)
    path = tmp_path / "w.pyth"
    torch.save({"model_state": source.state_dict()}, path)  # PyTorchVideo model-zoo layout

    same = build_model("x3d_tiny", num_classes=8)
    assert load_weights(same, path) == []
    for (name, a), b in zip(source.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), name

    other = build_model("x3d_tiny", num_classes=3)
    head = classifier_name(other)
    fresh = load_weights(other, path)
    assert fresh == [f"{head}.weight", f"{head}.bias"]
    assert torch.equal(other.state_dict()["blocks.0.conv.conv_t.weight"], source.state_dict()["blocks.0.conv.conv_t.weight"])
    with pytest.raises(VideomlError, match="does not fit the model"):
        load_weights(build_model("x3d_tiny", num_classes=3), path, strict_head=True)


def test_lightning_checkpoints_load_and_mismatches_are_named(tmp_path):
    model = build_model("x3d_tiny", num_classes=4)
    ckpt = tmp_path / "run.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, ckpt)
    assert load_weights(build_model("x3d_tiny", num_classes=4), ckpt) == []
    with pytest.raises(VideomlError, match="does not fit the model: missing"):
        load_weights(build_model("slow_r50", num_classes=4), ckpt)
    (tmp_path / "junk.pyth").write_bytes(b"not a checkpoint")
    with pytest.raises(VideomlError, match="not a loadable checkpoint"):
        load_weights(model, tmp_path / "junk.pyth")
    with pytest.raises(VideomlError, match="no such checkpoint"):
        load_weights(model, tmp_path / "none.pyth")
    with pytest.raises(VideomlError, match="unknown model 'x3d_huge'"):
        build_model("x3d_huge", 3)


def test_auto_memory_format_follows_the_measurements():
    x3d, slow = build_model("x3d_tiny", 4), build_model("slow_r50", 4)
    assert memory_format_for("auto", x3d, "cpu") == torch.channels_last_3d
    assert memory_format_for("auto", x3d, "cuda") == torch.contiguous_format  # depthwise Conv3d
    assert memory_format_for("auto", slow, "cuda") == torch.channels_last_3d
    assert memory_format_for("auto", None, "cpu") == torch.contiguous_format  # an exported model: nothing to inspect
    assert memory_format_for("contiguous", x3d, "cpu") == torch.contiguous_format
    with pytest.raises(VideomlError, match="unknown memory format '.*' \\(known: auto, "):
        memory_format_for("nhwc", x3d, "cpu")


def test_x3d_takes_any_clip_size_and_slowfast_leaves_its_input_alone():
    x3d = build_model("x3d_tiny", 4).eval()
    with torch.no_grad():
        assert x3d(torch.randn(2, 3, 4, 64, 64)).shape == x3d(torch.randn(2, 3, 7, 80, 96)).shape == (2, 4)
    slowfast = build_model("slowfast_r50", 4).eval()
    video = _input("slowfast_r50")
    first = list(video)
    with torch.no_grad():
        a, b = slowfast(video), slowfast(video)
    assert torch.equal(a, b) and all(x is y for x, y in zip(video, first))


def test_devices_are_checked_by_name_and_presence():
    assert parse_device("cpu") == torch.device("cpu")
    with pytest.raises(VideomlError, match="unknown device 'gpu'"):
        parse_device("gpu")
    with pytest.raises(VideomlError, match="device 'cuda:64': no such CUDA device here"):
        parse_device("cuda:64")


def test_layer_geometry_is_plain_ints_so_torch_compile_keeps_one_graph():
    """PyTorchVideo gives ResNet shortcut convolutions numpy strides; torch.compile's guards on those failed."""
    model = build_model("slow_tiny", 4)
    for module in model.modules():
        for attribute in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(module, attribute, None)
            if isinstance(value, tuple):
                assert all(type(v) is int for v in value), (module, attribute, value)
    explanation = torch._dynamo.explain(model.eval())(torch.randn(1, 3, 4, 64, 64))
    assert explanation.graph_count == 1 and explanation.graph_break_count == 0
