"""The default install resolves on Linux aarch64 (GH200, GB200, Grace, Graviton) as on x86-64: pip's resolver, asked
for that platform's wheels (scripts/check_platform_install.py), finds every core dependency; decord 0.6.0, which
publishes no aarch64 wheel, is not one of them, and the [decord] extra's decord2 has one."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "check_platform_install.py"

pytestmark = pytest.mark.slow  # asks the package index (about a minute)


def _check(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_the_core_dependencies_resolve_on_linux_aarch64():
    result = _check()
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = dict(line.split("==") for line in result.stdout.splitlines() if "==" in line)
    assert resolved["torch"] == "2.14.1" and resolved["torchvision"] == "0.29.1"
    assert "decord" not in resolved and "pytorchvideo (source only, pure Python)" in result.stdout
    assert "Linux aarch64, glibc 2.28, CPython 3.11, the core dependencies: resolved" in result.stderr


def test_the_decord_extra_installs_there_and_the_check_fails_where_no_wheel_exists():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["decord"]
    decord = _check("--no-core", *extra)  # its markers evaluated for aarch64: decord2
    assert decord.returncode == 0, decord.stderr[-3000:]
    assert "decord2==" in decord.stdout and "decord==" not in decord.stdout
    refused = _check("--no-core", "decord==0.6.0")
    assert refused.returncode == 1 and "No matching distribution found for decord==0.6.0" in refused.stderr
