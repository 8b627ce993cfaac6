"""The published recipes' regularisation, each option checked for its effect: MixUp / CutMix (targets, pairs, one
box through every frame, weights, SlowFast's pathways), label smoothing, RandAugment and random erasing (every frame
alike, reproducible per sample), the EMA of the weights against its closed form, and the TensorFlow twin's
refusals."""

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import fit_args, videoml

from videoml.data.clips import ClipDataset, ClipOptions, SampleKey
from videoml.data.datasets import labeled_paths
from videoml.data.encode import Encoding, encode_video
from videoml.data.transforms import normalize
from videoml.errors import VideomlError
from videoml.models.registry import model_input
from videoml.train.mixing import ClipMixing


def _batch(size=6, classes=5):
    torch.manual_seed(0)
    return torch.randn(size, 3, 4, 16, 16), torch.arange(size) % classes, torch.ones(size)


def test_mixup_blends_each_clip_with_its_mirror_in_the_batch_and_its_targets():
    video, label, weight = _batch()
    mixed, targets, weights = ClipMixing(5, mixup_alpha=0.8)(video.clone(), label, weight, [0, 0, 0, 0])
    assert torch.allclose(targets.sum(1), torch.ones(6))
    partner = label.flip(0)
    lam = targets[1, label[1]]  # clip 1 (label 1) is mixed with clip 4 (label 4)
    assert 0 < lam < 1 and torch.isclose(targets[1, partner[1]], 1 - lam)
    assert torch.allclose(mixed, lam * video + (1 - lam) * video.flip(0), atol=1e-6)
    assert torch.equal(weights, weight)


def test_cutmix_pastes_one_box_through_every_frame_and_targets_follow_its_area():
    video, label, weight = _batch()
    mixed, targets, _ = ClipMixing(5, cutmix_alpha=1.0)(video.clone(), label, weight, [0, 0, 3, 0])
    changed = (mixed != video).any(1)  # (B, T, H, W): where another clip's pixels are
    assert changed.any() and all(torch.equal(changed[:, t], changed[:, 0]) for t in range(4))
    assert torch.equal(mixed[changed.unsqueeze(1).expand_as(mixed)], video.flip(0)[changed.unsqueeze(1)
                                                                                  .expand_as(mixed)])
    area = changed[1, 0].float().mean()
    assert torch.isclose(targets[1, label[1]], 1 - area) and torch.isclose(targets[1, label.flip(0)[1]], area)


def test_mixing_is_reproducible_per_batch_leaves_out_unreadable_partners_and_mixes_pathways_alike():
    video, label, weight = _batch()
    mixing = ClipMixing(5, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    first = mixing(video.clone(), label, weight, [0, 1, 2, 0])
    again = mixing(video.clone(), label, weight, [0, 1, 2, 0])
    other = mixing(video.clone(), label, weight, [0, 1, 3, 0])
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])
    weight[1] = 0  # an unreadable clip: its partner (4) is contaminated too
    assert mixing(video.clone(), label, weight, [0, 1, 2, 0])[2].tolist() == [1, 0, 1, 1, 0, 1]
    slow, fast = video[:, :, ::2].clone(), video.clone()
    (mixed_slow, mixed_fast), targets, _ = mixing([slow, fast], label, torch.ones(6), [0, 1, 2, 0])
    alone, alone_targets, _ = mixing(video.clone(), label, torch.ones(6), [0, 1, 2, 0])
    assert torch.equal(mixed_fast, alone) and torch.equal(targets, alone_targets)
    assert torch.equal(mixed_slow, alone[:, :, ::2])  # the same lambda, choice and box on the slow pathway


def test_label_smoothing_of_unmixed_batches_is_torchs():
    video, label, weight = _batch()
    _, targets, _ = ClipMixing(5, mixup_alpha=0.8, prob=0.0, label_smoothing=0.1)(video, label, weight, [0])
    logits = torch.randn(6, 5)
    torch.testing.assert_close(F.cross_entropy(logits, targets), F.cross_entropy(logits, label, label_smoothing=0.1))
    with pytest.raises(VideomlError, match="model.mixup_alpha and model.cutmix_alpha must be >= 0"):
        ClipMixing(5, mixup_alpha=-1)


def _still_clip_dataset(folder, **options) -> ClipDataset:
    """A data set of one video whose 24 frames are the same picture (every frame intra-coded, losslessly)."""
    video = folder / "still.mp4"
    if not video.exists():
        picture = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
        encode_video([picture] * 24, [i / 16 for i in range(24)], video,
                     Encoding(gop=1, bframes=0, options={"crf": "0"}))
        (folder / "list.txt").write_text("still.mp4 0\n")
    return ClipDataset(labeled_paths(folder / "list.txt"), model_input("x3d_tiny"), ClipOptions(**options), train=True)


@pytest.fixture(scope="module")
def still_video(tmp_path_factory):
    return tmp_path_factory.mktemp("still")


@pytest.mark.parametrize("option", [{"rand_augment": {"magnitude": 9, "num_layers": 3, "prob": 1.0,
                                                      "sampling_std": 0.5}},
                                    {"augmix": {"magnitude": 3, "width": 3}}], ids=["rand_augment", "augmix"])
def test_rand_augment_and_augmix_treat_every_frame_alike_and_repeat_per_sample(still_video, option):
    plain = _still_clip_dataset(still_video)
    clips = _still_clip_dataset(still_video, **option)
    for epoch in range(3):
        key = SampleKey(0, epoch)
        before, after = plain[key].video, clips[key].video  # (C, T, H, W) uint8
        assert all(torch.equal(before[:, t], before[:, 0]) for t in range(before.shape[1]))  # a still clip
        assert not torch.equal(before, after)
        assert all(torch.equal(after[:, t], after[:, 0]) for t in range(after.shape[1]))  # still, once augmented
        assert torch.equal(after, clips[key].video)  # the sample's own generator: the same every time
    assert not torch.equal(clips[SampleKey(0, 0)].video, clips[SampleKey(0, 1)].video)


def test_random_erasing_fills_one_box_through_the_clip_with_normalised_noise(still_video):
    spec = model_input("x3d_tiny")
    plain = _still_clip_dataset(still_video)[SampleKey(0, 0)].video
    erased = _still_clip_dataset(still_video, random_erasing=1.0)[SampleKey(0, 0)].video
    box = (erased != plain).any(0)  # (T, H, W)
    assert box.any() and all(torch.equal(box[t], box[0]) for t in range(box.shape[0]))
    rows, cols = box[0].nonzero().T
    assert box[0].sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    noise = normalize(erased.unsqueeze(0), spec.mean, spec.std)[0][:, box]
    assert abs(float(noise.mean())) < 0.15 and 0.8 < float(noise.std()) < 1.2
    with pytest.raises(VideomlError, match="data.random_erasing is a probability"):
        _still_clip_dataset(still_video, random_erasing=2.0)
    with pytest.raises(VideomlError, match="data.rand_augment: .* are not RandAugment's arguments"):
        _still_clip_dataset(still_video, rand_augment={"strength": 3})


def test_the_tensorflow_twin_refuses_what_it_does_not_have_by_name(small_synth, tmp_path):
    base = fit_args(small_synth, tmp_path)
    result = videoml("tf", "fit", *base, "--model.mixup_alpha", "0.8")
    assert result.returncode == 1 and "model.mixup_alpha / model.cutmix_alpha (MixUp / CutMix of batches) are not " \
                                      "in the TensorFlow twin" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("videoml: error:")
    result = videoml("tf", "fit", *base, "--config", "configs/synth_x3d_tiny_regularised.yaml", "--model.mixup_alpha",
                     "0", "--model.cutmix_alpha", "0")
    assert result.returncode == 1 and "EMAWeightAveraging (weight averaging, EMA) is not in the TensorFlow twin" \
        in result.stderr, result.stderr[-2000:]


class RecordWeights(L.Callback):
    """Saves the head's weight and a BatchNorm's running mean after every training step (used by the EMA test)."""

    def __init__(self, path: str):
        self.path, self.steps = path, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        state = pl_module.model.state_dict()
        self.steps.append({k: state[k].clone() for k in WATCHED})

    def on_train_end(self, trainer, pl_module):
        torch.save(self.steps, self.path)


WATCHED = ("blocks.5.proj.weight", "blocks.0.norm.running_mean")


@pytest.mark.slow
def test_ema_weights_are_evaluated_and_checkpointed_as_their_closed_form(small_synth, tmp_path):
    decay, recorded = 0.7, tmp_path / "steps.pt"
    overlay = tmp_path / "ema.yaml"
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks+": [
        {"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging", "init_args": {"decay": decay}},
        {"class_path": "test_recipe_options.RecordWeights", "init_args": {"path": str(recorded)}}]}}))
    result = videoml("fit", *fit_args(small_synth, tmp_path, "--trainer.max_epochs", "2"), "--config", str(overlay),
                     env={"PYTHONPATH": f"{Path(__file__).parent}:{Path(__file__).parent.parent}"})
    assert result.returncode == 0, result.stderr[-3000:]
    steps = torch.load(recorded)
    assert len(steps) == 4  # 8 training videos, batches of 4, 2 epochs
    checkpoint = torch.load(tmp_path / "logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    for name in WATCHED:
        average = steps[0][name].float()
        for step in steps[1:]:  # torch.optim.swa_utils' EMA: the first update copies, then d * avg + (1 - d) * w
            average = decay * average + (1 - decay) * step[name].float()
        torch.testing.assert_close(checkpoint["state_dict"][f"model.{name}"].float(), average)
        torch.testing.assert_close(checkpoint["current_model_state"][f"model.{name}"], steps[-1][name])
