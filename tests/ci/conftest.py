"""Fixtures for the tests of tools/: temporary git repositories shaped like this workspace."""

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / "tools"

ToolRunner = Callable[..., subprocess.CompletedProcess[str]]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def commit_file(repo: Path, relative: str, content: str | None = None) -> str:
    """Write a file (by default: add a line to it), commit it, and return the new commit."""
    path = repo / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        content = (path.read_text() if path.exists() else "") + "\n# changed\n"
    path.write_text(content)
    git(repo, "add", relative)
    git(repo, "commit", "--quiet", "-m", f"change {relative}")
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def run_tool() -> ToolRunner:
    """Run a script of tools/ with this environment's Python, as a developer or CI would."""

    def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(TOOLS / script), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture
def workspace_repo(tmp_path: Path) -> Path:
    """A git repository holding this workspace's project files, one commit deep.

    The root pyproject.toml, uv.lock, README.md, Makefile and every member's pyproject.toml and
    settings are copied, with one source file per member: enough for the tools, cheap to copy.
    """
    repo = tmp_path / "repo"
    patterns = [
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "Makefile",
        "packages/*/pyproject.toml",
        "services/*/pyproject.toml",
        "packages/*/src/*/settings.py",
        "services/*/src/*/settings.py",
    ]
    for pattern in patterns:
        for source in REPO_ROOT.glob(pattern):
            target = repo / source.relative_to(REPO_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    for member in [*REPO_ROOT.glob("packages/*/src/*"), *REPO_ROOT.glob("services/*/src/*")]:
        init = repo / member.relative_to(REPO_ROOT) / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text("")
    git(repo.parent, "init", "--quiet", "--initial-branch=main", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "workspace")
    return repo
