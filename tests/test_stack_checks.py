"""What the stack's commands refuse before they start anything, each in one line: a revision
graph Alembic cannot read (`make migrate`, `make up`, `make dev`), a `DATABASE_URL` without
the service's prefix (every command that runs a service or its migrations), and a rollout with
no stack running."""

import shutil
from pathlib import Path

import pytest

import stack
from stack_database import check_revisions
from stack_runner import StackRunner
from stack_services import Service, StackError


@pytest.fixture
def broken_things(tmp_path: Path, stack_runner: StackRunner) -> Service:
    """things-svc's migrations, and a revision whose down_revision no script declares."""
    things = stack_runner.service("things-svc")
    shutil.copytree(things.directory / "alembic", tmp_path / "alembic")
    (tmp_path / "alembic" / "versions" / "20261207_bbb_add_colour.py").write_text(
        'revision = "bbb000000001"\ndown_revision = "f903a9d01171"\n'
    )
    return Service(**{**vars(things), "directory": tmp_path})


def test_make_migrate_refuses_a_missing_down_revision_in_one_line_then_alembics_error(
    stack_runner: StackRunner, broken_things: Service
) -> None:
    with pytest.raises(StackError) as refused:
        stack.migrate(stack_runner.stack, [broken_things])

    first, *rest = str(refused.value).splitlines()
    versions = broken_things.directory / "alembic" / "versions"
    assert first == (
        f"things-svc: {versions}/20261207_bbb_add_colour.py: revision bbb000000001 has "
        f"down_revision 'f903a9d01171', which no script in {versions} declares: set it to "
        "the revision this one follows"
    )
    assert rest[:2] == ["", "Alembic's own error:"]
    assert rest[-1] == "KeyError: 'f903a9d01171'"
    # Nothing started: make up and make dev refuse the same way (they check the same way).
    assert stack_runner.processes() == []
    with pytest.raises(StackError, match=r"^things-svc: .* has down_revision 'f903a9d01171'"):
        check_revisions(broken_things)


def test_a_database_url_without_the_prefix_is_refused_as_the_services_refuse_it(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_runner.env["DATABASE_URL"] = "postgresql://things:things@127.0.0.1:5433/things"

    for command in ("dev", "migrate", "env"):
        assert stack_runner.main(command, "--service", "things-svc") == 1
        assert capsys.readouterr().err == (
            "error: DATABASE_URL is set, but things-svc reads its database from "
            "THINGS_DATABASE_URL: rename the variable\n"
        )
    assert stack_runner.processes() == []


def test_make_rollout_without_a_stack_says_what_to_start(
    stack_runner: StackRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack_runner.main("rollout", "--service", "things-svc") == 1
    assert capsys.readouterr().err == (
        "error: the native stack is not running: make up REPLICAS=3 first\n"
    )
    assert stack_runner.processes() == []
