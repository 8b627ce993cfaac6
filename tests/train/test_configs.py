"""Every recipe in configs/ parses against the current code (LightningCLI checks every key and type); an overlay
(a config that only adds options, e.g. the regularisation one) parses on top of the config it names as its base."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import hf_cache

CONFIGS = sorted(Path("configs").glob("*.yaml"))
OVERLAYS = {"synth_x3d_tiny_regularised": "synth_x3d_tiny"}  # overlay -> the config it goes on top of


def print_config(*configs: Path, env: dict | None = None) -> dict:
    args = [a for config in configs for a in ("--config", str(config))]
    result = subprocess.run([sys.executable, "-m", "videoml", "fit", *args, "--print_config"], capture_output=True,
                            text=True, env={**os.environ, **env} if env else None)
    assert result.returncode == 0, result.stderr[-2000:]
    return yaml.safe_load(result.stdout)


def videomae_base(root: Path) -> dict:
    """MCG-NJU/videomae-base's config and image processor (VideoMAE-B, 16 frames of 224 px, ImageNet's mean and
    std) in a Hugging Face cache under ``root``, as `hf download` leaves them; the environment that reads it."""
    transformers = pytest.importorskip("transformers")

    def save(folder):
        transformers.VideoMAEConfig(use_mean_pooling=False).save_pretrained(folder)
        transformers.VideoMAEImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]) \
            .save_pretrained(folder)

    return hf_cache(root, "MCG-NJU/videomae-base", save)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_names_a_registered_model(config, tmp_path):
    from videoml.models.registry import MODELS

    base = [Path("configs") / f"{OVERLAYS[config.stem]}.yaml"] if config.stem in OVERLAYS else []
    named = yaml.safe_load(config.read_text()).get("model", {}).get("model", "")  # (an overlay names none)
    resolved = print_config(*base, config, env=videomae_base(tmp_path) if named.startswith("hf:") else None)
    assert resolved["model"]["model"] in MODELS or named == "hf:MCG-NJU/videomae-base"
    assert resolved["trainer"]["max_epochs"] >= 1


def test_the_videomae_recipe_shows_the_authors_values_and_reads_the_model_from_the_cache(tmp_path):
    env = videomae_base(tmp_path)
    resolved = print_config(Path("configs/videomae_b_kinetics400.yaml"), env=env)
    model, data, trainer = resolved["model"], resolved["data"], resolved["trainer"]
    assert (model["optimizer"], model["lr"], model["lr_base_batch_size"], model["weight_decay"]) == \
        ("adamw", 5e-4, 512, 0.05)
    assert (model["layer_decay"], model["warmup_epochs"], model["label_smoothing"]) == (0.75, 5, 0.1)
    assert (model["mixup_alpha"], model["cutmix_alpha"], model["cutmix_prob"]) == (0.8, 1.0, 0.5)
    assert data["rand_augment"] == {"magnitude": 7, "num_layers": 4, "sampling_std": 0.5}
    assert (data["random_erasing"], data["clips_per_video"], data["views"], data["crops"]) == (0.25, 2, 5, 3)
    # the input, from the cached config and image processor: 16 frames 4 apart, 224 px, ImageNet's normalisation
    code = ("import dataclasses, json; from videoml.models.registry import model_input; "
            "print(json.dumps(dataclasses.asdict(model_input('hf:MCG-NJU/videomae-base'))))")
    spec = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                     env={**os.environ, **env}).stdout)
    assert (spec["frames"], spec["stride"], spec["crop"], spec["eval_scale"]) == (16, 4, 224, 224)
    assert spec["mean"] == [0.485, 0.456, 0.406] and spec["resize"] == "huggingface"
    assert trainer["max_epochs"] == 75


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
