"""The tf.data pipeline yields exactly the clips the PyTorch loaders yield: same order, frames, crops, labels."""

import numpy as np
import pytest

from videoml.models.registry import model_input
from videoml.data.datamodule import VideoDataModule
from videoml.tf.data import ClipPipeline, training_batches


def _module(small_synth, **options):
    return VideoDataModule(train={"kind": "labeled_paths", "path": str(small_synth.split_file("train"))},
                           val={"kind": "labeled_paths", "path": str(small_synth.split_file("val"))},
                           spec=model_input("x3d_tiny"), num_workers=0, seed=7, **{"batch_size": 3, **options})


@pytest.mark.parametrize("split", ["train", "val"])
def test_tensorflow_and_pytorch_see_identical_clips(small_synth, split):
    data = _module(small_synth, views=2, crops=3)
    loader = data.train_dataloader() if split == "train" else data.val_dataloader()
    loader.sampler.set_epoch(2)  # another epoch: other order, other crops
    pipeline = ClipPipeline(data.clips.dataset(split), batch_size=3, parallel=2, seed=7)
    pairs = list(zip(loader, pipeline.epoch(2)))
    assert len(pairs) == pipeline.steps == -(-len(data.clips.dataset(split)) // 3)
    for torch_batch, tf_batch in pairs:
        expected = np.moveaxis(torch_batch.video.numpy(), -4, -1)  # (..., C, T, H, W) -> channels-last
        np.testing.assert_array_equal(tf_batch["video"].numpy(), expected)
        for key in ("label", "video_index", "weight"):
            np.testing.assert_array_equal(tf_batch[key].numpy(), getattr(torch_batch, key).numpy())
    if split == "train":  # a new epoch reorders and re-augments
        first = next(iter(pipeline.epoch(3)))["video"].numpy()
        assert not np.array_equal(first, pairs[0][1]["video"].numpy())


@pytest.mark.parametrize("cache", [0, 64])  # decoded videos kept in memory: shared by tf.data's threads
def test_repeated_clips_reach_tensorflow_in_the_pytorch_order(small_synth, cache):
    data = _module(small_synth, batch_size=4, clips_per_video=2, decoded_cache_mb=cache)
    loader = data.train_dataloader()
    loader.sampler.set_epoch(1)
    pipeline = ClipPipeline(data.clips.dataset("train"), batch_size=4, parallel=2, seed=7)
    pairs = list(zip(loader, pipeline.epoch(1)))
    assert len(pairs) == pipeline.steps == -(-2 * len(data.sources["train"]) // 4)
    for torch_batch, tf_batch in pairs:
        np.testing.assert_array_equal(tf_batch["video"].numpy(), np.moveaxis(torch_batch.video.numpy(), -4, -1))
        for key in ("label", "video_index", "weight"):
            np.testing.assert_array_equal(tf_batch[key].numpy(), getattr(torch_batch, key).numpy())
    assert pairs[0][0].video_index[0] == pairs[0][0].video_index[1]  # a video's clips side by side


def test_sample_weights_reproduce_the_pytorch_loss_normalisation(small_synth):
    pipeline = ClipPipeline(_module(small_synth).clips.dataset("train"), batch_size=4, seed=0)
    videos, labels, weights = next(iter(training_batches(pipeline, 0, num_classes=8)))
    assert videos.dtype.name == "uint8" and videos.shape[1:] == (4, 64, 64, 3)
    assert labels.shape == (4, 8) and np.allclose(labels.numpy().sum(1), 1)
    np.testing.assert_allclose(weights.numpy(), 1.0)  # all readable: the mean over the batch, as in PyTorch
