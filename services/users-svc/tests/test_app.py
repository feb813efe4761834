"""How the app is put together, beyond what one endpoint's tests see."""

from fastapi import FastAPI

from common.testing import OPENAPI_FILE, ServiceUnderTest, openapi_document, threaded_dependencies


def test_no_dependency_runs_in_a_thread(app: FastAPI) -> None:
    # A plain `def` dependency costs a thread hand-off on every request: make it `async def`.
    assert threaded_dependencies(app) == []


def test_the_committed_openapi_document_is_current(app: FastAPI, service: ServiceUnderTest) -> None:
    # The contract is reviewed as a file: `make openapi` rewrites it after a change to the API.
    committed = (service.project_dir / OPENAPI_FILE).read_text(encoding="utf-8")
    assert committed == openapi_document(app), "openapi.json is out of date: run `make openapi`"
