import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, ToolRunner

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def validate(*workflows: Path) -> subprocess.CompletedProcess[str]:
    """Validate against the GitHub workflow schema vendored in check-jsonschema: no network."""
    return subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, workflows),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_committed_workflows_are_what_the_generator_writes(run_tool: ToolRunner) -> None:
    result = run_tool("workflows.py", "--check", cwd=REPO_ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_member_has_a_workflow_and_the_gate_exists() -> None:
    pyprojects = [
        *REPO_ROOT.glob("packages/*/pyproject.toml"),
        *REPO_ROOT.glob("services/*/pyproject.toml"),
    ]
    members = {tomllib.loads(p.read_text())["project"]["name"] for p in pyprojects}

    assert {path.stem for path in WORKFLOWS} == {*members, "ci-gate"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[path.name for path in WORKFLOWS])
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    result = validate(workflow)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  build:\n    steps: oops\n")

    result = validate(broken)

    assert result.returncode == 1
    assert "broken.yml" in result.stdout


def test_a_new_service_gets_its_workflow(run_tool: ToolRunner, workspace_repo: Path) -> None:
    tools = workspace_repo / "tools"
    shutil.copytree(REPO_ROOT / "tools", tools, ignore=shutil.ignore_patterns("__pycache__"))
    service = workspace_repo / "services" / "gadgets-svc"
    service.mkdir()
    (service / "pyproject.toml").write_text(
        '[project]\nname = "gadgets-svc"\nversion = "0.1.0"\ndependencies = ["common"]\n'
        '[tool.alembic]\nscript_location = "%(here)s/alembic"\n'
    )

    assert run_tool("workflows.py", "--check", "--root", str(workspace_repo), cwd=tools).returncode
    written = run_tool("workflows.py", "--root", str(workspace_repo), cwd=tools)
    assert "wrote .github/workflows/gadgets-svc.yml" in written.stdout

    workflow = yaml.safe_load((workspace_repo / ".github/workflows/gadgets-svc.yml").read_text())
    job = workflow["jobs"]["check"]
    paths = workflow["on"]["pull_request"]["paths"]
    assert {"services/gadgets-svc/**", "packages/common/**", "uv.lock", "pyproject.toml"} <= set(
        paths
    )
    assert job["env"]["GADGETS_DATABASE_URL"].endswith("/gadgets")
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make check-member MEMBER=gadgets-svc" in runs
    # What that target runs for it: its own dependencies only, then its migrations checked.
    plan = run_tool(
        "member_check.py", "gadgets-svc", "--print", "--root", str(workspace_repo), cwd=tools
    )
    assert "uv sync --locked --package gadgets-svc" in plan.stdout
    assert "[services/gadgets-svc] " in plan.stdout
    assert "alembic check" in plan.stdout
    assert (
        run_tool("workflows.py", "--check", "--root", str(workspace_repo), cwd=tools).returncode
        == 0
    )

    # The service goes away: its generated workflow is stale, then removed.
    shutil.rmtree(service)
    stale = run_tool("workflows.py", "--check", "--root", str(workspace_repo), cwd=tools)
    assert stale.returncode == 1
    assert "gadgets-svc.yml: generated for a member that no longer exists" in stale.stdout
    run_tool("workflows.py", "--root", str(workspace_repo), cwd=tools)
    assert not (workspace_repo / ".github/workflows/gadgets-svc.yml").exists()


def test_a_member_is_checked_alone_lint_types_migrations_and_tests(run_tool: ToolRunner) -> None:
    plan = run_tool("member_check.py", "things-svc", "--print", cwd=REPO_ROOT).stdout.splitlines()

    assert plan[0].endswith("sync --locked --package things-svc")
    assert any(" check services/things-svc" in line for line in plan)  # ruff
    assert any("format --check services/things-svc" in line for line in plan)
    assert any("mypy services/things-svc" in line for line in plan)
    assert plan[4].startswith("[services/things-svc]")
    assert plan[4].endswith("alembic upgrade head")
    assert plan[5].endswith("alembic check")
    assert plan[-1].endswith("pytest services/things-svc")
    common = run_tool("member_check.py", "common", "--print", cwd=REPO_ROOT).stdout
    assert "--package common --all-extras" in common
    assert "alembic" not in common
