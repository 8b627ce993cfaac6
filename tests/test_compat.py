import subprocess
import sys

import torch

import videoml  # noqa: F401  (installs the compat alias)


def test_old_torchvision_module_name_is_the_new_module():
    import torchvision.transforms._functional_tensor as new
    import torchvision.transforms.functional_tensor as old

    assert old is new


def test_pytorchvideo_transforms_import_and_run_through_the_alias():
    from pytorchvideo.transforms import ShortSideScale, UniformTemporalSubsample
    from pytorchvideo.transforms.augmentations import AugmentTransform

    video = torch.randint(0, 256, (3, 8, 40, 60), dtype=torch.uint8)  # C, T, H, W
    clip = ShortSideScale(32)(UniformTemporalSubsample(4)(video.float()))
    assert clip.shape == (3, 4, 32, 48)
    # ShearX goes through the aliased module's affine()
    sheared = AugmentTransform("ShearX", magnitude=9, prob=1.0)(video.permute(1, 0, 2, 3))
    assert sheared.shape == (8, 3, 40, 60) and not torch.equal(sheared, video.permute(1, 0, 2, 3))


def test_pytorchvideo_model_builders_run():
    from pytorchvideo.models.x3d import create_x3d

    model = create_x3d(input_clip_length=4, input_crop_size=32, model_num_class=5, depth_factor=1.0,
                       head_activation=None).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 5)


def test_a_fresh_interpreter_needs_only_import_videoml_first():
    code = "import videoml, pytorchvideo.transforms, pytorchvideo.models.hub; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_fvcores_own_torchscript_deprecation_is_not_printed_but_the_users_is():
    code = """
import warnings
warnings.simplefilter("always")
import videoml
from pytorchvideo.models.x3d import create_x3d  # imports fvcore.nn, whose focal_loss calls torch.jit.script
import fvcore.nn.focal_loss, torch
assert type(fvcore.nn.focal_loss.sigmoid_focal_loss_jit).__name__ == "ScriptFunction"
print("imported")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torch.jit.script(fvcore.nn.focal_loss.sigmoid_focal_loss)
print(sum("torch.jit.script" in str(w.message) for w in caught))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in result.stderr, result.stderr
    assert result.stdout.split() == ["imported", "1"]
