from .conftest import REPO_ROOT, ToolRunner


def test_a_member_is_checked_alone_lint_types_migrations_tests_and_previous_release(
    run_tool: ToolRunner,
) -> None:
    plan = run_tool("member_check.py", "things-svc", "--print", cwd=REPO_ROOT).stdout.splitlines()

    assert plan[0].endswith("sync --locked --package things-svc")
    assert any(" check services/things-svc" in line for line in plan)  # ruff
    assert any("format --check services/things-svc" in line for line in plan)
    assert any("mypy services/things-svc" in line for line in plan)
    assert plan[4].startswith("[services/things-svc]")
    assert plan[4].endswith("alembic upgrade head")
    assert plan[5].endswith("alembic check")
    assert "--with squawk-cli==" in plan[6]
    assert plan[6].endswith("tools/migration_lint.py services/things-svc")
    assert plan[-2].endswith("pytest services/things-svc")
    assert plan[-1].endswith("tools/compat.py things-svc")
    common = run_tool("member_check.py", "common", "--print", cwd=REPO_ROOT).stdout
    assert "--package common --all-extras" in common
    assert "alembic" not in common
    assert "tools/compat.py" not in common
