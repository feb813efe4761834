"""tools/openapi.py: each service's committed OpenAPI document, checked and rewritten."""

import shutil
from pathlib import Path

from .conftest import REPO_ROOT, ToolRunner


def test_a_stale_document_is_reported_with_its_diff_then_rewritten(
    workspace_repo: Path, run_tool: ToolRunner
) -> None:
    for committed in REPO_ROOT.glob("services/*/openapi.json"):
        shutil.copyfile(committed, workspace_repo / committed.relative_to(REPO_ROOT))
    root = ["--root", str(workspace_repo), "--service", "things-svc"]
    assert run_tool("openapi.py", "--check", *root, cwd=workspace_repo).returncode == 0

    things = workspace_repo / "services/things-svc/openapi.json"
    current = things.read_text()
    things.write_text(current.replace('"title": "things-svc"', '"title": "stale"'))
    checked = run_tool("openapi.py", "--check", *root, cwd=workspace_repo)

    assert checked.returncode == 1
    assert '-    "title": "stale",' in checked.stdout
    assert '+    "title": "things-svc",' in checked.stdout
    assert "out of date: services/things-svc/openapi.json; run `make openapi`" in checked.stderr
    assert '"title": "stale"' in things.read_text()  # a check writes nothing

    written = run_tool("openapi.py", *root, cwd=workspace_repo)
    assert written.returncode == 0
    assert things.read_text() == current


def test_an_unknown_service_is_refused(workspace_repo: Path, run_tool: ToolRunner) -> None:
    result = run_tool(
        "openapi.py", "--service", "nope-svc", "--root", str(workspace_repo), cwd=workspace_repo
    )

    assert result.returncode == 2
    assert "no service named nope-svc" in result.stderr
