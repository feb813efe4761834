"""The CI workflow, .github/workflows/ci.yml: valid, clean under zizmor, and its shell steps run
here as the runner runs them, on real git repositories, with the values GitHub would give their
expressions."""

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.repository import copy_repository

from .conftest import REPO_ROOT, commit_file, git

WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS_DIR / "ci.yml"
BIN = Path(sys.executable).parent
EVERY_MEMBER = sorted(
    tomllib.loads(pyproject.read_text())["project"]["name"]
    for pyproject in [
        *REPO_ROOT.glob("packages/*/pyproject.toml"),
        *REPO_ROOT.glob("services/*/pyproject.toml"),
    ]
)
NO_COMMIT = "0" * 40  # `github.event.before` when a push creates the branch


def jobs() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return dict(workflow["jobs"])


def step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in jobs()[job]["steps"] if s.get("name") == name)


def evaluate(expression: str, context: dict[str, Any]) -> str:
    """What GitHub gives `${{ a.b || c.d }}`: the first value that is not empty, else the last;
    a missing one is empty, a boolean `true` or `false`."""
    value: Any = None
    for path in expression.removeprefix("${{").removesuffix("}}").split("||"):
        value = context
        for key in path.strip().split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            break
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def run_step(
    workflow_step: dict[str, Any], *, cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run a step's script as the runner does (`bash -eo pipefail`); its outputs, as
    `$GITHUB_OUTPUT` received them."""
    github_output = cwd.parent / "github-output"
    github_output.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", workflow_step["run"]],
        cwd=cwd,
        env={**os.environ, **env, "GITHUB_OUTPUT": str(github_output)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    return result, outputs


def affected_members(repo: Path, github: dict[str, Any]) -> list[str]:
    """The `affected` job's matrix, for an event described by its `github` context."""
    affected = step("affected", "Work out the affected members")
    env = {name: evaluate(value, {"github": github}) for name, value in affected["env"].items()}
    result, outputs = run_step(affected, cwd=repo, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    members: list[str] = json.loads(outputs["members"])
    return members


def pull_request(base: str, head: str) -> dict[str, Any]:
    return {
        "event_name": "pull_request",
        "event": {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}},
    }


def push(before: str, sha: str, *, forced: bool = False) -> dict[str, Any]:
    return {"event_name": "push", "sha": sha, "event": {"before": before, "forced": forced}}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of this repository, one commit on `main`: what the `affected` job checks out."""
    return copy_repository(REPO_ROOT, tmp_path / "repo", commit=True)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


# The workflow as a file: valid, linted, pinned, owned by people.


def validate(workflow: Path) -> subprocess.CompletedProcess[str]:
    """Against the GitHub workflow schema vendored in check-jsonschema: no network."""
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_matches_the_github_schema() -> None:
    result = validate(WORKFLOW)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  build:\n    steps: oops\n")

    result = validate(broken)

    assert result.returncode == 1
    assert "broken.yml" in result.stdout


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "zizmor", "--offline", path], capture_output=True, text=True, timeout=120
    )


def test_zizmor_finds_nothing() -> None:
    result = zizmor(WORKFLOWS_DIR)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_rejects_an_action_pinned_to_a_tag(tmp_path: Path) -> None:
    workflow = tmp_path / "tagged.yml"
    workflow.write_text(
        WORKFLOW.read_text().replace(
            "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd", "actions/checkout@v6"
        )
    )

    result = zizmor(workflow)

    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout


def test_every_action_is_pinned_to_a_commit_named_by_its_tag() -> None:
    lines = WORKFLOW.read_text().splitlines()
    uses = [line.strip().removeprefix("- ") for line in lines if "uses:" in line]

    assert uses
    for line in uses:
        assert re.fullmatch(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


def test_no_file_in_github_says_it_is_generated() -> None:
    for path in (REPO_ROOT / ".github").rglob("*"):
        if path.is_file():
            assert not re.search(r"do not edit|generated by", path.read_text(), re.IGNORECASE)


def test_the_workflow_names_no_member() -> None:
    """Members come from the workspace at run time: a new one needs no edit here."""

    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield str(key)
                yield from strings(value)
        elif isinstance(node, list):
            for item in node:
                yield from strings(item)
        else:
            yield str(node)

    text = "\n".join(strings(jobs()))
    assert not [member for member in EVERY_MEMBER if member in text]


# The `affected` job: the path filter, following the workspace's dependencies.


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param("services/users-svc/src/users_svc/main.py", ["users-svc"], id="users-svc"),
        # Every member depends on common (devstack too, and common[testing] on devstack).
        pytest.param("packages/common/src/common/db.py", EVERY_MEMBER, id="common"),
        pytest.param("uv.lock", EVERY_MEMBER, id="lock"),
        pytest.param("tools/member_check.py", EVERY_MEMBER, id="member-check"),
        pytest.param(".github/workflows/ci.yml", EVERY_MEMBER, id="workflow"),
        pytest.param("README.md", [], id="readme"),
    ],
)
def test_a_pull_request_checks_the_members_its_change_reaches(
    repo: Path, changed: str, expected: list[str]
) -> None:
    base = head(repo)
    git(repo, "switch", "--quiet", "--create", "change")
    commit_file(repo, changed)
    # The base moves on after the branch started: the merge base decides, not the base's tip.
    git(repo, "switch", "--quiet", "main")
    commit_file(repo, "services/things-svc/src/things_svc/main.py")
    newer_base = head(repo)
    change = git(repo, "rev-parse", "change").strip()

    assert affected_members(repo, pull_request(newer_base, change)) == expected
    assert affected_members(repo, pull_request(base, change)) == expected


def test_a_push_to_main_checks_what_changed_since_the_previous_push(repo: Path) -> None:
    before = head(repo)
    commit_file(repo, "services/users-svc/src/users_svc/main.py")

    assert affected_members(repo, push(before, head(repo))) == ["users-svc"]


@pytest.mark.parametrize(
    "github",
    [
        pytest.param(push(NO_COMMIT, "HEAD"), id="new-branch"),
        pytest.param(push("HEAD~1", "HEAD", forced=True), id="forced-push"),
        pytest.param(push("1" * 40, "HEAD"), id="previous-commit-gone"),
        pytest.param({"event_name": "workflow_dispatch", "sha": "HEAD", "event": {}}, id="by-hand"),
    ],
)
def test_without_a_previous_commit_every_member_is_checked(
    repo: Path, github: dict[str, Any]
) -> None:
    commit_file(repo, "README.md")

    assert affected_members(repo, github) == EVERY_MEMBER


def test_when_nothing_is_affected_no_member_job_runs() -> None:
    check = jobs()["check"]

    # The matrix would be empty, which GitHub refuses: the job is skipped instead.
    assert check["if"] == "needs.affected.outputs.members != '[]'"
    assert check["strategy"]["matrix"]["member"] == (
        "${{ fromJSON(needs.affected.outputs.members) }}"
    )


# The member job: one per affected member, `make check-member`, nothing member-specific.


def test_each_member_job_runs_make_check_member_with_its_own_postgres() -> None:
    check = jobs()["check"]
    run = step("check", "Check the member alone")

    assert check["name"] == "${{ matrix.member }}"
    assert check["needs"] == "affected"
    assert check["strategy"]["fail-fast"] is False
    assert check["services"]["postgres"]["image"] == "postgres:18.1"
    assert run["run"] == 'make check-member MEMBER="$MEMBER"'
    assert run["env"]["MEMBER"] == "${{ matrix.member }}"
    # make test-compat's previous release, which the checkout's full history holds.
    assert run["env"]["BASE"] == "${{ github.event.pull_request.base.sha || github.event.before }}"
    assert step("check", "Check out")["with"]["fetch-depth"] == 0
    assert {"TEST_DATABASE_URL", "MIGRATIONS_DATABASE_URL"} <= check["env"].keys()


def test_every_job_is_bounded_and_reads_only() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())

    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert job["timeout-minutes"] <= 20, name
        assert "permissions" not in job, name
        for checkout in [s for s in job["steps"] if s.get("uses", "").startswith("actions/")]:
            assert checkout["with"]["persist-credentials"] is False, name


def test_ci_installs_the_uv_version_of_the_makefile(tmp_path: Path) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    version = re.search(r"^UV_VERSION \?= (\S+)$", makefile, re.MULTILINE)
    setup_uv = step("check", "Install uv")

    result, outputs = run_step(
        step("affected", "Read the uv version the Makefile installs"), cwd=REPO_ROOT, env={}
    )

    assert result.returncode == 0, result.stderr
    assert version is not None
    assert outputs == {"version": version.group(1)}
    assert jobs()["affected"]["outputs"]["uv-version"] == "${{ steps.uv.outputs.version }}"
    assert setup_uv["with"]["version"] == "${{ needs.affected.outputs.uv-version }}"
    assert setup_uv["with"]["enable-cache"] is True


# The `ci` job: the one required check.


def test_the_gate_needs_every_other_job_and_always_runs() -> None:
    everything = jobs()
    gate = everything["ci"]

    assert gate["name"] == "ci"
    assert sorted(gate["needs"]) == sorted(name for name in everything if name != "ci")
    assert gate["if"] == "always()"


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        pytest.param({"affected": "success", "check": "success"}, True, id="all-passed"),
        pytest.param({"affected": "success", "check": "skipped"}, True, id="nothing-affected"),
        pytest.param({"affected": "success", "check": "failure"}, False, id="a-member-failed"),
        pytest.param({"affected": "success", "check": "cancelled"}, False, id="cancelled"),
        pytest.param({"affected": "failure", "check": "skipped"}, False, id="affected-failed"),
    ],
)
def test_the_gate_passes_only_when_every_needed_job_passed_or_was_skipped(
    tmp_path: Path, results: dict[str, str], passes: bool
) -> None:
    gate = step("ci", "Every needed job passed or was skipped")
    # `join(needs.*.result, ' ')`: each needed job's result (a matrix job's is its legs' worst).
    assert gate["env"] == {"RESULTS": "${{ join(needs.*.result, ' ') }}"}

    result, _ = run_step(gate, cwd=tmp_path, env={"RESULTS": " ".join(results.values())})

    assert (result.returncode == 0) is passes, result.stdout


# A new service: CI runs it, and nothing else changes.


def test_a_new_service_is_checked_by_ci_with_no_edit_of_the_workflow(
    repo: Path, tmp_path: Path
) -> None:
    main = head(repo)
    git(repo, "switch", "--quiet", "--create", "orders")
    commit_file(
        repo,
        "services/orders-svc/pyproject.toml",
        '[project]\nname = "orders-svc"\nversion = "0.1.0"\ndependencies = ["common"]\n\n'
        '[dependency-groups]\ndev = ["common[testing]"]\n\n'
        '[tool.alembic]\nscript_location = "%(here)s/alembic"\n',
    )
    # A prefix the naming rule would not give: it is read from the service's settings.
    commit_file(
        repo,
        "services/orders-svc/src/orders_svc/settings.py",
        "from pydantic_settings import BaseSettings, SettingsConfigDict\n\n\n"
        "class Settings(BaseSettings):\n"
        '    model_config = SettingsConfigDict(env_prefix="SHOP_ORDERS_")\n',
    )

    # The branch adds the service and nothing else: no workflow, no list of members.
    assert git(repo, "diff", "--name-only", main, "HEAD").split() == [
        "services/orders-svc/pyproject.toml",
        "services/orders-svc/src/orders_svc/settings.py",
    ]
    assert (repo / ".github/workflows/ci.yml").read_bytes() == WORKFLOW.read_bytes()
    assert affected_members(repo, pull_request(main, head(repo))) == ["orders-svc"]
    assert "orders-svc" in affected_members(repo, push(NO_COMMIT, "HEAD"))

    # The member job's step for `matrix.member == 'orders-svc'`, with the job's environment and a
    # stand-in for uv that says which database each command would use.
    uv = tmp_path / "uv"
    uv.write_text('#!/bin/sh\necho "uv $* (database: ${SHOP_ORDERS_DATABASE_URL:-none})"\n')
    uv.chmod(0o755)
    check = jobs()["check"]
    run = step("check", "Check the member alone")
    env = {
        **check["env"],
        **{
            name: evaluate(v, {"matrix": {"member": "orders-svc"}})
            for name, v in run["env"].items()
        },
        "UV": str(uv),
    }
    result, _ = run_step(run, cwd=repo, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    ran = result.stdout.splitlines()
    migrations = check["env"]["MIGRATIONS_DATABASE_URL"]
    assert "uv sync --locked --package orders-svc (database: none)" in ran
    assert f"uv run --no-sync alembic upgrade head (database: {migrations})" in ran
    assert f"uv run --no-sync alembic check (database: {migrations})" in ran
    assert "uv run --no-sync pytest services/orders-svc (database: none)" in ran
