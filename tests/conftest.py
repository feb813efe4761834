"""The repository-level tests: the local stack as real processes, and the infra files."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# tools/ holds scripts, not an installed package; the tests' own helpers live beside this file.
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests")]

from stack_runner import StackRunner  # noqa: E402


@pytest.fixture
def stack_runner(tmp_path: Path) -> Iterator[StackRunner]:
    runner = StackRunner(tmp_path / "stack")
    try:
        yield runner
    finally:
        if runner.processes():
            runner.run("down")


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRunner]:
    """A native stack started once for the tests of a module."""
    runner = StackRunner(tmp_path_factory.mktemp("stack"))
    runner.up()
    try:
        yield runner
    finally:
        runner.run("down")
