import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import ToolRunner, commit_file, git

PENDING = 3


def check_run(run_id: int, name: str, status: str, conclusion: str | None) -> dict[str, Any]:
    return {"id": run_id, "name": name, "status": status, "conclusion": conclusion}


@pytest.fixture
def change_in_things(workspace_repo: Path) -> tuple[Path, str]:
    base = git(workspace_repo, "rev-parse", "HEAD").strip()
    commit_file(workspace_repo, "services/things-svc/src/things_svc/routes.py")
    return workspace_repo, base


def judge(
    run_tool: ToolRunner, repo: Path, base: str, runs: list[dict[str, Any]]
) -> tuple[int, str]:
    answer = repo.parent / "check-runs.json"
    answer.write_text(json.dumps({"total_count": len(runs), "check_runs": runs}))
    result = run_tool(
        "ci_gate.py", "--base", base, "--head", "HEAD", "--check-runs", str(answer), cwd=repo
    )
    return result.returncode, result.stdout


def test_the_gate_passes_when_the_affected_member_passed(
    run_tool: ToolRunner, change_in_things: tuple[Path, str]
) -> None:
    runs = [
        check_run(1, "things-svc", "completed", "success"),
        # An unaffected member's failure is none of this change's business.
        check_run(2, "users-svc", "completed", "failure"),
    ]

    code, output = judge(run_tool, *change_in_things, runs)

    assert code == 0
    assert "Affected members: things-svc" in output


def test_the_gate_fails_when_the_affected_member_failed(
    run_tool: ToolRunner, change_in_things: tuple[Path, str]
) -> None:
    code, output = judge(
        run_tool, *change_in_things, [check_run(1, "things-svc", "completed", "failure")]
    )

    assert code == 1
    assert "failure  things-svc" in output


def test_a_rerun_replaces_the_earlier_result(
    run_tool: ToolRunner, change_in_things: tuple[Path, str]
) -> None:
    runs = [
        check_run(7, "things-svc", "completed", "success"),
        check_run(3, "things-svc", "completed", "cancelled"),
    ]

    assert judge(run_tool, *change_in_things, runs)[0] == 0


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param([], id="not-started"),
        pytest.param([check_run(1, "things-svc", "in_progress", None)], id="running"),
    ],
)
def test_the_gate_waits_for_an_unfinished_member(
    run_tool: ToolRunner, change_in_things: tuple[Path, str], runs: list[dict[str, Any]]
) -> None:
    code, output = judge(run_tool, *change_in_things, runs)

    assert code == PENDING
    assert "waiting  things-svc" in output


def test_the_gate_passes_at_once_when_nothing_is_affected(
    run_tool: ToolRunner, workspace_repo: Path
) -> None:
    base = git(workspace_repo, "rev-parse", "HEAD").strip()
    commit_file(workspace_repo, "README.md")

    code, output = judge(run_tool, workspace_repo, base, [])

    assert code == 0
    assert "nothing to wait for" in output
