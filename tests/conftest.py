"""The repository-level tests: the local stack as real processes, and the infra files."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# tools/ holds scripts, not an installed package; the tests' own helpers live beside this file.
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests")]

from devstack.postgres import scratch_dir  # noqa: E402
from stack_runner import StackRunner  # noqa: E402


@pytest.fixture
def stack_runner() -> Iterator[StackRunner]:
    with scratch_dir("stack-test-") as state_dir:
        runner = StackRunner(state_dir)
        try:
            yield runner
        finally:
            if runner.processes():
                runner.run("down")


@pytest.fixture(scope="module")
def running_stack() -> Iterator[StackRunner]:
    """A native stack started once for the tests of a module."""
    with scratch_dir("stack-test-") as state_dir:
        runner = StackRunner(state_dir)
        runner.up()
        try:
            yield runner
        finally:
            runner.run("down")
