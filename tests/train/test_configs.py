"""Every recipe in configs/ parses against the current code (LightningCLI checks every key and type)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIGS = sorted(Path("configs").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_and_names_a_registered_model(config):
    from videoml.models.registry import MODELS

    result = subprocess.run([sys.executable, "-m", "videoml", "fit", "--config", str(config), "--print_config"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    resolved = yaml.safe_load(result.stdout)
    assert resolved["model"]["model"] in MODELS
    assert resolved["trainer"]["max_epochs"] >= 1
