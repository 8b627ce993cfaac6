"""Every recipe in configs/ parses against the current code (LightningCLI checks every key and type); an overlay
(a config that only adds options, e.g. the regularisation one) parses on top of the config it names as its base."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIGS = sorted(Path("configs").glob("*.yaml"))
OVERLAYS = {"synth_x3d_tiny_regularised": "synth_x3d_tiny"}  # overlay -> the config it goes on top of


def print_config(*configs: Path) -> dict:
    args = [a for config in configs for a in ("--config", str(config))]
    result = subprocess.run([sys.executable, "-m", "videoml", "fit", *args, "--print_config"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_names_a_registered_model(config):
    from videoml.models.registry import MODELS

    base = [Path("configs") / f"{OVERLAYS[config.stem]}.yaml"] if config.stem in OVERLAYS else []
    resolved = print_config(*base, config)
    assert resolved["model"]["model"] in MODELS
    assert resolved["trainer"]["max_epochs"] >= 1


def test_the_mvit_recipe_shows_pyslowfasts_published_values():
    resolved = print_config(Path("configs/mvit_b_kinetics400.yaml"))
    model, data, trainer = resolved["model"], resolved["data"], resolved["trainer"]
    assert (model["mixup_alpha"], model["cutmix_alpha"], model["cutmix_prob"], model["label_smoothing"]) == \
        (0.8, 1.0, 0.5, 0.1)
    assert model["model_options"] == {"droppath_rate_block": 0.2, "head_dropout_rate": 0.5}
    assert (model["optimizer"], model["lr"], model["weight_decay"], model["warmup_epochs"]) == ("adamw", 1e-4, 0.05, 30)
    assert data["rand_augment"] == {"magnitude": 7, "num_layers": 4, "sampling_std": 0.5}
    assert (data["random_erasing"], data["clips_per_video"]) == (0.25, 2)
    assert (trainer["gradient_clip_val"], trainer["max_epochs"]) == (1.0, 200)


def test_the_regularisation_overlay_keeps_the_demos_checkpoints_and_adds_ema():
    resolved = print_config(Path("configs/synth_x3d_tiny.yaml"), Path("configs/synth_x3d_tiny_regularised.yaml"))
    callbacks = [c["class_path"].rsplit(".", 1)[1] for c in resolved["trainer"]["callbacks"]]
    assert callbacks == ["ModelCheckpoint", "ModelCheckpoint", "EMAWeightAveraging"]
