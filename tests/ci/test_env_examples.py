"""tools/env_examples.py: each service's .env.example lists every setting, as its code says."""

from .conftest import REPO_ROOT, ToolRunner


def test_committed_env_examples_are_what_the_settings_say(run_tool: ToolRunner) -> None:
    result = run_tool("env_examples.py", "--check", cwd=REPO_ROOT)

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
