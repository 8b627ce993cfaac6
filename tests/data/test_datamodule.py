"""The LightningDataModule is a thin view of the clip room: its options are ClipOptions' fields, given flat and
checked when the configuration is parsed; checkpoints keep them as plain values."""

import pytest

from videoml.data.clips import ClipOptions
from videoml.data.datamodule import VideoDataModule
from videoml.errors import UsageError
from videoml.models.registry import model_input


def test_the_data_modules_options_are_the_clip_options_and_checkpoints_keep_them_flat(small_synth):
    data = VideoDataModule(spec=model_input("x3d_tiny"), batch_size=4, views=2, num_workers=0,
                           train={"kind": "labeled_paths", "path": str(small_synth.split_file("train"))})
    assert data.clips.options == ClipOptions(batch_size=4, views=2, num_workers=0)
    assert data.hparams["views"] == 2 and data.hparams["batch_size"] == 4  # what a checkpoint's card reads
    assert len(data.classes) == 8 and set(data.sources) == {"train"}
    batch = next(iter(data.train_dataloader()))
    assert batch.video.shape == (4, 3, 4, 64, 64)


@pytest.mark.parametrize("option, value, words", [
    ("--data.backend", "nosuch", "expected one of pyav, decord, torchcodec"),
    ("--data.views", "0", "0 does not conform"),
    ("--data.decode_timeout", "inf", "--data.decode_timeout"),
])
def test_a_bad_clip_option_is_refused_when_the_config_is_parsed(small_synth, option, value, words):
    from videoml.train.cli import run

    with pytest.raises(UsageError, match=rf"^{option}: .*") as error:
        run(["fit", "--model.model", "x3d_tiny", "--data.train",
             f"{{kind: labeled_paths, path: {small_synth.split_file('train')}}}", option, value])
    assert words in str(error.value)
