"""How the app is put together, beyond what one endpoint's tests see."""

from fastapi import FastAPI

from common.testing import threaded_dependencies


def test_no_dependency_runs_in_a_thread(app: FastAPI) -> None:
    # A plain `def` dependency costs a thread hand-off on every request: make it `async def`.
    assert threaded_dependencies(app) == []
