"""tools/generated_files.py: each service's committed OpenAPI document, checked and rewritten;
each service's .env.example lists every setting, as its code says."""

import shutil
from pathlib import Path

from .conftest import REPO_ROOT, ToolRunner


def test_a_stale_document_is_reported_with_its_diff_then_rewritten(
    workspace_repo: Path, run_tool: ToolRunner
) -> None:
    for committed in REPO_ROOT.glob("services/*/openapi.json"):
        shutil.copyfile(committed, workspace_repo / committed.relative_to(REPO_ROOT))
    root = ["--root", str(workspace_repo), "--service", "things-svc"]
    assert (
        run_tool("generated_files.py", "openapi", "--check", *root, cwd=workspace_repo).returncode
        == 0
    )

    things = workspace_repo / "services/things-svc/openapi.json"
    current = things.read_text()
    things.write_text(current.replace('"title": "things-svc"', '"title": "stale"'))
    checked = run_tool("generated_files.py", "openapi", "--check", *root, cwd=workspace_repo)

    assert checked.returncode == 1
    assert '-    "title": "stale",' in checked.stdout
    assert '+    "title": "things-svc",' in checked.stdout
    assert "out of date: services/things-svc/openapi.json; run `make openapi`" in checked.stderr
    assert '"title": "stale"' in things.read_text()  # a check writes nothing

    written = run_tool("generated_files.py", "openapi", *root, cwd=workspace_repo)
    assert written.returncode == 0
    assert things.read_text() == current


def test_an_unknown_service_is_refused(workspace_repo: Path, run_tool: ToolRunner) -> None:
    result = run_tool(
        "generated_files.py",
        "openapi",
        "--service",
        "nope-svc",
        "--root",
        str(workspace_repo),
        cwd=workspace_repo,
    )

    assert result.returncode == 2
    assert "no service named nope-svc" in result.stderr


def test_committed_env_examples_are_what_the_settings_say(run_tool: ToolRunner) -> None:
    result = run_tool("generated_files.py", "env-examples", "--check", cwd=REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_listed_with_its_variable_default_and_meaning() -> None:
    things = (REPO_ROOT / "services/things-svc/.env.example").read_text().splitlines()

    assert "# THINGS_DB_POOL_SIZE=5" in things
    assert "# ENVIRONMENT=development" in things
    assert "# THINGS_JWKS_URL=http://127.0.0.1:8001/.well-known/jwks.json" in things
    # Each variable follows the sentence that says what it does.
    for index, line in enumerate(things):
        if line.startswith("# THINGS_"):
            assert things[index - 1].startswith("# "), line
            assert "=" not in things[index - 1], line
