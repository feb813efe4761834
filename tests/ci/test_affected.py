import tomllib
from pathlib import Path

import pytest

from .conftest import ToolRunner, commit_file, git


def member_names(repo: Path) -> list[str]:
    names = []
    for pyproject in [
        *repo.glob("packages/*/pyproject.toml"),
        *repo.glob("services/*/pyproject.toml"),
    ]:
        names.append(tomllib.loads(pyproject.read_text())["project"]["name"])
    return sorted(names)


def affected(run_tool: ToolRunner, repo: Path, *args: str) -> list[str]:
    result = run_tool("affected.py", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param("services/things-svc/src/things_svc/routes.py", ["things-svc"], id="service"),
        pytest.param("services/things-svc/pyproject.toml", ["things-svc"], id="service-deps"),
        # things-svc's contract tests read users-svc's document ([tool.contracts] providers).
        pytest.param(
            "services/users-svc/openapi.json", ["things-svc", "users-svc"], id="provider-contract"
        ),
        pytest.param("services/users-svc/src/users_svc/main.py", ["users-svc"], id="provider"),
        pytest.param("README.md", [], id="readme-only"),
        pytest.param("tools/anything.py", [], id="tools"),
    ],
)
def test_a_change_affects_the_members_it_reaches(
    run_tool: ToolRunner, workspace_repo: Path, changed: str, expected: list[str]
) -> None:
    base = git(workspace_repo, "rev-parse", "HEAD").strip()
    commit_file(workspace_repo, changed)

    assert affected(run_tool, workspace_repo, "--base", base, "--head", "HEAD") == expected


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param("packages/common/src/common/db.py", id="common"),
        pytest.param("uv.lock", id="lock"),
        pytest.param("pyproject.toml", id="root-pyproject"),
        pytest.param("Makefile", id="makefile"),
        pytest.param("tools/affected.py", id="affected-script"),
        pytest.param(".github/workflows/ci.yml", id="workflow"),
    ],
)
def test_a_shared_change_affects_every_member(
    run_tool: ToolRunner, workspace_repo: Path, changed: str
) -> None:
    base = git(workspace_repo, "rev-parse", "HEAD").strip()
    commit_file(workspace_repo, changed)

    assert affected(run_tool, workspace_repo, "--base", base, "--head", "HEAD") == member_names(
        workspace_repo
    )


def test_dependencies_are_followed_transitively(run_tool: ToolRunner, workspace_repo: Path) -> None:
    # A library between common and a new service: a change in common reaches the service
    # through it, and a change in the library reaches the service but not common.
    commit_file(
        workspace_repo,
        "packages/auth/pyproject.toml",
        '[project]\nname = "auth"\nversion = "0.1.0"\ndependencies = ["common"]\n',
    )
    commit_file(
        workspace_repo,
        "services/gadgets-svc/pyproject.toml",
        '[project]\nname = "gadgets-svc"\nversion = "0.1.0"\ndependencies = ["auth"]\n',
    )
    base = git(workspace_repo, "rev-parse", "HEAD").strip()
    commit_file(workspace_repo, "packages/auth/src/auth/tokens.py")

    assert affected(run_tool, workspace_repo, "--base", base, "--head", "HEAD") == [
        "auth",
        "gadgets-svc",
    ]


def test_without_head_the_working_tree_counts(run_tool: ToolRunner, workspace_repo: Path) -> None:
    # Uncommitted and untracked files: what a developer asks about before committing.
    (workspace_repo / "services/users-svc/src/users_svc/new_module.py").write_text("")

    assert affected(run_tool, workspace_repo, "--base", "HEAD") == ["users-svc"]
    assert affected(run_tool, workspace_repo, "--base", "HEAD", "--format", "tests") == [
        "services/users-svc"  # no tests folder in this copy: the member itself
    ]


def test_all_lists_every_member_whatever_changed(
    run_tool: ToolRunner, workspace_repo: Path
) -> None:
    assert affected(run_tool, workspace_repo, "--all") == member_names(workspace_repo)


def test_an_unknown_ref_is_a_clear_error(run_tool: ToolRunner, workspace_repo: Path) -> None:
    result = run_tool("affected.py", "--base", "no-such-ref", "--head", "HEAD", cwd=workspace_repo)

    assert result.returncode == 2
    assert "git failed" in result.stderr
