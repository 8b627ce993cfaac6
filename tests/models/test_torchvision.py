"""torchvision's video models: the registry's inputs and published-weights entries against torchvision's own weights
enums, the evaluation clip against their ``weights.transforms()`` on real corpus files, and their weights by name
from a mirror laid out as download.pytorch.org."""

import dataclasses
import functools
import hashlib
import http.server
import re
import shutil
import threading

import numpy as np
import pytest
import torch
from torchvision.models import get_model_weights

from videoml.api import create_model, load_model
from videoml.data.corpus import corpus
from videoml.data.decoding import open_video
from videoml.data.transforms import normalize
from videoml.errors import VideomlError
from videoml.infer.clips import VideoClips
from videoml.models.registry import MODELS, build_model, model_input
from videoml.models.zoo import ZOO, kinetics400

TORCHVISION = {key: entry for key, entry in ZOO.items() if entry.source == "torchvision"}


def _weights(entry):
    """The torchvision weights enum member whose URL is ``entry``'s file."""
    [weights] = [w for w in get_model_weights(entry.model) if w.url.endswith("/" + entry.file)]
    return weights


def test_every_torchvision_video_model_is_registered_with_published_weights():
    assert sorted({e.model for e in TORCHVISION.values()}) == sorted(
        n for n, e in MODELS.items() if e.family == "torchvision")
    assert sorted({e.model for e in TORCHVISION.values()}) == sorted(
        ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b"])
    assert len(TORCHVISION) == sum(len(get_model_weights(m)) for m in {e.model for e in TORCHVISION.values()})


@pytest.mark.parametrize("key", sorted(TORCHVISION))
def test_inputs_and_numbers_are_those_torchvisions_weights_publish(key):
    entry = TORCHVISION[key]
    weights, spec = _weights(entry), model_input(entry.model)
    transforms, docs = weights.transforms(), weights.meta["_docs"]
    # the evaluation the published accuracy was measured with: clip_len frames at frame_rate, clips_per_video views
    assert spec.frames == int(re.search(r"clip_len=(\d+)", docs).group(1))
    assert spec.fps == float(re.search(r"frame_rate=([\d.]+)", docs).group(1)) and spec.stride == 1
    assert (entry.views, entry.crops) == (int(re.search(r"clips_per_video=(\d+)", docs).group(1)), 1)
    resize = transforms.resize_size
    assert (list(spec.eval_size) if len(resize) == 2 else [spec.eval_scale]) == resize
    assert [spec.crop, spec.crop] == transforms.crop_size and spec.resize == "torchvision"
    assert list(spec.mean) == transforms.mean and list(spec.std) == transforms.std
    metrics = weights.meta["_metrics"]["Kinetics-400"]
    assert (entry.top1, entry.top5) == (metrics["acc@1"], metrics["acc@5"])
    assert tuple(weights.meta["categories"]) == kinetics400()
    model = build_model(entry.model, 400)
    assert sum(p.numel() for p in model.parameters()) == weights.meta["num_params"]


def _real_files(*names: str):
    """Corpus files by name (Debian packages' videos of different sizes and aspect ratios)."""
    try:
        files = corpus()
    except VideomlError as e:
        pytest.skip(f"no corpus here: {e}")
    chosen = [f for f in files if f.name in names]
    assert len(chosen) == len(names)
    return chosen


PARITY_FILES = ("base_pal_wide.mpg", "VID_20191220_170832.mp4", "motion.mov")  # 720x576, 1920x1080, 568x320


@pytest.mark.parametrize("name, crops", [("r3d_18", 1), ("mvit_v1_b", 1), ("s3d", 1), ("r3d_18", 3)])
def test_evaluation_clips_are_torchvisions_transforms_of_the_same_frames(name, crops):
    """videoml's evaluation clip (decoded, resized, cropped in a worker as uint8; normalised on the device) against
    ``weights.transforms()`` on the same decoded frames: the same numbers up to float rounding, and the model's logits
    on both within 1e-4 of the largest. Three crops: their centre crop is the one-crop clip."""
    spec, transforms = model_input(name), _weights(TORCHVISION[name]).transforms()
    spec = spec.replace(frames=min(spec.frames, 16))
    torch.manual_seed(0)
    model = build_model(name, 400).eval()
    for path in _real_files(*PARITY_FILES[:3 if name == "r3d_18" else 1]):
        clips = VideoClips([path], spec, views=2, crops=crops)
        item = clips.read(0, str(path))
        assert item.error is None, item.error
        ours = normalize(item.video, spec.mean, spec.std)  # (views * crops, C, T, H, W)
        with open_video(path) as video:
            indices = clips.clip_indices(video.timestamps)
            frames = video.get_clips(indices).data  # (views, T, H, W, 3) as stored
        reference = transforms(frames.permute(0, 1, 4, 2, 3))  # torchvision's input: (N, T, C, H, W) uint8
        centre = ours[1::3] if crops == 3 else ours
        assert centre.shape == reference.shape, path
        assert (centre - reference).abs().max() <= 1e-5, path
        with torch.no_grad():
            a, b = model(centre), model(reference)
        assert (a - b).abs().max() <= 1e-4 * b.abs().max(), path


def test_clips_are_taken_at_the_rate_the_weights_were_trained_at():
    [path] = _real_files("movie-hello.mp4")  # 30 fps
    spec = model_input("r3d_18")
    with open_video(path) as video:
        indices = VideoClips([path], spec, views=5).clip_indices(video.timestamps)
        steps = np.diff(video.timestamps[indices], axis=1)
    assert indices.shape == (5, 16) and len(np.unique(indices[:, 0])) == 5
    assert np.abs(steps - 1 / 15).max() <= 0.5 / video.fps  # 16 frames 1/15 s apart, to the nearest source frame


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder served on 127.0.0.1 as download.pytorch.org/models; a private torch hub cache."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("VIDEOML_TORCHVISION_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield root
    server.shutdown()
    server.server_close()


def test_weights_by_name_are_verified_against_the_digest_in_their_file_name(mirror, tmp_path, monkeypatch):
    torch.manual_seed(0)
    published = build_model("r3d_18", 400)
    plain = tmp_path / "r3d_18.pth"
    torch.save(published.state_dict(), plain)  # torchvision's layout: a plain state dict
    # served under the real name, the file is not the published one: its digest does not start as the name says
    shutil.copy(plain, mirror / ZOO["r3d_18"].file)
    with pytest.raises(VideomlError, match=r"zoo:r3d_18: the download from http://127.0.0.1:\d+/r3d_18-b3b3357e.pth "
                                           r"has SHA-256 \w+\.\.\., expected b3b3357e\.\.\.: damaged"):
        create_model("r3d_18", 400, weights="zoo:r3d_18")
    assert list((tmp_path / "torch" / "hub" / "checkpoints").iterdir()) == []
    # a file named by its own digest, as torchvision names its files: downloaded, verified, loaded, with class names
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    named = f"r3d_18-{digest[:8]}.pth"
    shutil.copy(plain, mirror / named)
    monkeypatch.setitem(ZOO, "r3d_18", dataclasses.replace(ZOO["r3d_18"], file=named))
    model = load_model("zoo:r3d_18")
    assert model.classes == kinetics400() and model.card.input == model_input("r3d_18")
    assert (model.card.views, model.card.crops) == (5, 1)
    clip = torch.randint(0, 256, (1, 3, 16, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        expected = published.eval()(normalize(clip, model.card.input.mean, model.card.input.std))
    assert torch.allclose(model(clip), expected, rtol=0, atol=1e-5)  # the served weights
    assert (tmp_path / "torch" / "hub" / "checkpoints" / named).is_file()


def test_s3d_features_are_the_input_of_its_pointwise_classifier():
    from videoml.models.features import FeatureModel

    torch.manual_seed(0)
    model = build_model("s3d", 5).eval()
    clip = torch.randn(1, 3, 14, 224, 224)
    with torch.no_grad():
        features, logits = FeatureModel(model)(clip), model(clip)
    weight, bias = model.classifier[1].weight.flatten(1), model.classifier[1].bias
    assert features.shape == (1, 1024)
    assert torch.allclose(features @ weight.T + bias, logits, atol=1e-5)
