#!/usr/bin/env python3
"""Does the default install of videoml resolve on another platform? pip's own resolver answers, for the project's
core dependencies (pyproject.toml's ``dependencies``, no extras), as it would on that machine:

    python scripts/check_platform_install.py    # Linux aarch64, glibc 2.28 (GH200, GB200, Graviton), CPython 3.11
    python scripts/check_platform_install.py --machine x86_64 --glibc 2.35 --python-version 3.12
    python scripts/check_platform_install.py --no-core 'decord2>=3.4'   # one requirement alone (an extra's)

``pip install --dry-run --platform P ... --only-binary=:all:`` resolves wheels only (another platform's sources cannot
be built here). A machine with glibc 2.N installs every ``manylinux_2_M`` wheel with M <= N, and pip takes each tag
it may use as one ``--platform``: all of them are given (torch's aarch64 wheels ask for cuDNN's, tagged 2_27). A
requirement that publishes no wheel at all cannot be resolved under that rule; those here are pure Python
(pytorchvideo and fvcore ship only sources, which build anywhere), so one is replaced by its own requirements, read
from its installed metadata, and the resolve runs again. Exit status 0 with one line per resolved distribution; 1
with pip's reason.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def core_requirements() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def source_only_requirements(name: str) -> list[str] | None:
    """The requirements of ``name`` when it is pure Python (built here from its sources, ``Root-Is-Purelib``), its
    extras' dropped; None when it is not, or not installed here to tell."""
    try:
        wheel = metadata.distribution(name).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return None
    if "Root-Is-Purelib: true" not in wheel:
        return None  # compiled for this machine only: no wheel for the other platform means no install there
    return [r for r in metadata.requires(name) or [] if "extra ==" not in r]


def for_target(requirements: list[str], machine: str, python_version: str) -> list[str]:
    """The requirements that apply on the target (environment markers evaluated for it, not for this machine, as pip
    would), without their markers."""
    from packaging.requirements import Requirement

    target = {"platform_machine": machine, "python_version": python_version, "python_full_version": python_version,
              "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    out = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(target):
            requirement.marker = None
            out.append(str(requirement))
    return out


def platform_tags(machine: str, glibc: str) -> list[str]:
    """The wheel platform tags a Linux machine with this glibc installs (PEP 600; 2_17 is manylinux2014)."""
    newest = int(glibc.split(".")[1])
    return [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 16, -1)] + [f"manylinux2014_{machine}"]


def resolve(requirements: list[str], platforms: list[str], python_version: str) -> tuple[dict | None, str]:
    """(pip's installation report, or None; pip's error output)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                   *(f"--platform={tag}" for tag in platforms), "--only-binary=:all:",
                   "--python-version", python_version,
                   "--implementation", "cp", "--report", str(report), *requirements]
        run = subprocess.run(command, capture_output=True, text=True)
        return (json.loads(report.read_text()) if run.returncode == 0 else None), run.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", default="aarch64")
    parser.add_argument("--glibc", default="2.28")
    parser.add_argument("--python-version", default="3.11")
    parser.add_argument("--no-core", action="store_true", help="only the requirements given, not the core ones")
    parser.add_argument("requirements", nargs="*", help="more requirements (an extra's)")
    args = parser.parse_args()
    target = f"Linux {args.machine}, glibc {args.glibc}, CPython {args.python_version}"
    what = " ".join(args.requirements if args.no_core else ["the core dependencies", *args.requirements])
    requirements = for_target(([] if args.no_core else core_requirements()) + args.requirements, args.machine,
                              args.python_version)
    source_only = []
    for _ in range(10):
        report, errors = resolve(requirements, platform_tags(args.machine, args.glibc), args.python_version)
        if report is not None:
            break
        missing = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", errors)
        name = missing and missing.group(1)
        own = source_only_requirements(name) if name and name not in source_only else None
        if own is None:
            print(f"{target}, {what}: no install\n{errors.strip()}", file=sys.stderr)
            return 1
        source_only.append(name)
        requirements = [r for r in requirements if not re.match(rf"{re.escape(name)}\b", r, re.I)]
        requirements += for_target(own, args.machine, args.python_version)
    else:
        print(f"{target}, {what}: gave up after {len(source_only)} source-only packages", file=sys.stderr)
        return 1
    for item in report["install"]:
        print(f"{item['metadata']['name']}=={item['metadata']['version']}")
    for name in source_only:
        print(f"{name} (source only, pure Python)")
    print(f"{target}, {what}: resolved", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
