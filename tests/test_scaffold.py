"""`make new-service` and `make new-domain`, run in a copy of this repository.

The quick tests check what the generators refuse: a bad name or a second run changes no byte of
the repository. The `scaffold` test (`make test-scaffold`, a few minutes) generates a service and
a domain with the Makefile, then runs on the copy what CI and a developer would: lint, types,
`alembic check`, the services' tests, the Compose tests, CI's plan for it, and the native stack
serving the new service to a user holding a users-svc token.
"""

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from commands import run_to_success
from sqlalchemy.engine import URL

import scaffold
import scaffold_names
from devstack.postgres import drop_database, recreate_database, scratch_dir
from devstack.processes import free_port
from devstack.repository import copy_repository

ROOT = Path(__file__).resolve().parents[1]
# What tools leave behind without changing the repository: never hashed.
CACHES = {".venv", ".local", "__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (caches aside) and the SHA-256 of its bytes."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not CACHES.intersection(path.relative_to(root).parts)
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    # `uv lock` in the copy mostly resolves from uv's cache, but on a fresh machine it may still
    # ask the package index for metadata of other Python versions' forks: it is not forced
    # offline.
    return copy_repository(ROOT, tmp_path / "repo")


def scaffold_main(repo: Path, *args: str) -> int:
    return scaffold.main(["--root", str(repo), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-service", "Orders-svc"], "use lowercase letters"),
        (["new-service", "orders"], "ending in -svc"),
        (["new-service", "orders_svc"], "ending in -svc"),
        (["new-service", "orders--svc"], "single hyphens"),
        (["new-service", "9orders-svc"], "starting with a letter"),
        (["new-service", "things-svc"], "things-svc already exists"),
        (["new-service", "postgres-svc"], "the server's own database"),
        (["new-service", "test-svc"], "TEST_DATABASE_URL"),
        (["new-service", "fish-svc"], "name the domain in the plural"),
        (["new-service", "orders-svc", "--domain", "sessions"], "already uses"),
        (["new-domain", "things-svc", "Widgets"], "use lowercase letters"),
        (["new-domain", "things-svc", "widget-s"], "use lowercase letters"),
        (["new-domain", "things-svc", "things"], "already has a domain 'things'"),
        (["new-domain", "things-svc", "classes", "--singular", "class"], "keyword"),
        (["new-domain", "things-svc", "pages"], "already uses"),
        (["new-domain", "things-svc", "tests"], "test module"),
        (["new-domain", "things-svc", "a" * 21 + "s"], "at most 20 characters"),
        (["new-domain", "no-such-svc", "widgets"], "no service 'no-such-svc'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_bad_name_is_refused_with_one_message_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = snapshot(repo)

    code = scaffold_main(repo, *args)

    errors = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(errors) == 1, errors
    assert errors[0].startswith("error: ")
    assert message in errors[0]
    assert snapshot(repo) == before


def test_a_second_new_domain_is_refused_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert scaffold_main(repo, "new-domain", "things-svc", "widgets") == 0
    created = snapshot(repo)

    assert scaffold_main(repo, "new-domain", "things-svc", "widgets") == 1
    assert "already has a domain 'widgets'" in capsys.readouterr().err
    assert snapshot(repo) == created


def test_a_second_new_service_is_refused_and_changes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(repo)
    assert scaffold_main(repo, "new-service", "orders-svc") == 0
    created = snapshot(repo)
    assert {
        "uv.lock",
        "infra/docker-compose.yml",
        "deploy/kubernetes/base/orders-svc/deployment.yaml",
        "deploy/kubernetes/overlays/prod/kustomization.yaml",
    } <= {path for path in created if created[path] != before.get(path)}

    assert scaffold_main(repo, "new-service", "orders-svc") == 1
    assert "orders-svc already exists" in capsys.readouterr().err
    assert snapshot(repo) == created


def test_a_failing_step_puts_every_file_back(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `uv lock` runs last, after every file is written: make it fail.
    monkeypatch.setenv("UV", shutil.which("false") or "/bin/false")
    before = snapshot(repo)

    assert scaffold_main(repo, "new-service", "orders-svc") == 1

    assert "uv lock failed" in capsys.readouterr().err
    assert snapshot(repo) == before
    assert not (repo / "services" / "orders-svc").exists()


# -- the whole journey, in a copy with its own environment ----------------------------------


class Copy:
    """A copy of the repository, its own virtual environment, commands run in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTEST_ADDOPTS"}
            and not key.startswith(("PYTEST_XDIST", "STACK_"))
        }

    def run(self, *command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        return run_to_success(command, cwd=cwd or self.root, env={**self.env, **(env or {})})

    def python(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        """The copy's own Python, with what the copy's environment installs."""
        return self.run(str(self.root / ".venv" / "bin" / "python"), *args, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def generated() -> Iterator[Copy]:
    """A copy where `make new-service NAME=orders-svc` ran, then `make new-domain` for a second
    domain in it and a domain in each existing service; prints how long new-service took."""
    with scratch_dir("scaffold-test-") as folder:
        copy = Copy(copy_repository(ROOT, folder / "repo"))
        copy.run("make", "sync")
        started = time.monotonic()
        copy.run("make", "new-service", "NAME=orders-svc")
        generated_in = time.monotonic() - started
        for service, domain in [("orders", "refunds"), ("things", "widgets"), ("users", "notes")]:
            copy.run("make", "new-domain", f"SERVICE={service}-svc", f"NAME={domain}")
        print(f"\nmake new-service (venv synced): {generated_in:.1f}s")
        yield copy


@pytest.mark.scaffold
def test_generated_code_passes_lint_types_and_the_import_check(generated: Copy) -> None:
    generated.python("-m", "ruff", "check", ".")
    generated.python("-m", "ruff", "format", "--check", ".")
    for folder in ("services/orders-svc", "services/things-svc", "services/users-svc", "tools"):
        generated.python("-m", "mypy", folder)
    generated.python("tools/check_imports.py")
    # CI checks the new service with no edit of its workflow: it is one of the members the
    # matrix lists, and its job's check migrates it.
    assert '"orders-svc"' in generated.python(
        "tools/affected.py", "--all", "--format", "json", "--root", "."
    )
    assert "alembic check" in generated.python("tools/member_check.py", "orders-svc", "--print")


@pytest.mark.scaffold
def test_the_new_service_gets_manifests_that_pass_the_checks(generated: Copy) -> None:
    # Drift, render and strict validation for every supported Kubernetes version, yamllint;
    # then checkov in its own environment: what `.ci/run` runs on the repository.
    checked = generated.run("make", "manifests-check")
    checkov = generated.run("make", "manifests-checkov")
    rendered = (generated.root / ".local/rendered-manifests/prod.yaml").read_text()

    assert "name: orders-svc" in rendered
    assert "checkov: no failed check in dev.yaml prod.yaml" in checkov, checkov[-2000:]
    print(f"\n{checked.strip().splitlines()[-1]}")


@pytest.mark.scaffold
@pytest.mark.parametrize(
    ("service", "prefix"),
    [("orders-svc", "ORDERS"), ("things-svc", "THINGS"), ("users-svc", "USERS")],
)
def test_migrations_apply_and_match_the_models(
    generated: Copy, postgres_server: URL, service: str, prefix: str
) -> None:
    name = f"scaffold_check_{prefix.lower()}"
    url = recreate_database(postgres_server, name)
    env = {f"{prefix}_DATABASE_URL": url.render_as_string(hide_password=False)}
    try:
        folder = generated.root / "services" / service
        generated.python("-m", "alembic", "upgrade", "head", cwd=folder, env=env)
        generated.python("-m", "alembic", "check", cwd=folder, env=env)
    finally:
        drop_database(postgres_server, name)


@pytest.mark.scaffold
def test_the_services_tests_and_the_compose_tests_pass(
    generated: Copy, postgres_server: URL
) -> None:
    env = {
        "TEST_DATABASE_URL": postgres_server.render_as_string(hide_password=False),
        # Databases of their own (test_orders_scaffold, ...): this session's stay untouched.
        "PYTEST_XDIST_WORKER": "scaffold",
    }
    started = time.monotonic()
    generated.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "services/orders-svc", env=env)
    print(f"\norders-svc's tests: {time.monotonic() - started:.1f}s")
    generated.python(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "services/things-svc",
        "services/users-svc",
        "tests/test_infra.py",
        env=env,
    )


@pytest.mark.scaffold
def test_the_native_stack_serves_the_new_service_to_a_signed_in_user(generated: Copy) -> None:
    with scratch_dir("scaffold-stack-") as state_dir:
        env = {
            "STACK_DIR": str(state_dir),
            "STACK_POSTGRES_PORT": str(free_port()),
            **{f"STACK_{name}_PORT": str(free_port()) for name in ("ORDERS", "THINGS", "USERS")},
        }
        generated.python("tools/stack.py", "up", "--mode", "native", env=env)
        try:
            users = f"http://127.0.0.1:{env['STACK_USERS_PORT']}/api/v1"
            orders = f"http://127.0.0.1:{env['STACK_ORDERS_PORT']}/api/v1/orders"
            widgets = f"http://127.0.0.1:{env['STACK_THINGS_PORT']}/api/v1/widgets"
            with httpx.Client(timeout=10) as client:
                account = {"email": "ada@example.com", "full_name": "Ada", "password": "x" * 12}
                assert client.post(f"{users}/users", json=account).status_code == 201
                login = {"email": account["email"], "password": account["password"]}
                token = client.post(f"{users}/auth/login", json=login).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}

                created = client.post(orders, json={"name": "First"}, headers=auth)
                listed = client.get(orders, headers=auth)
                widget = client.post(widgets, json={"name": "Gear"}, headers=auth)

                assert created.status_code == 201, created.text
                assert [o["id"] for o in listed.json()["items"]] == [created.json()["id"]]
                assert widget.status_code == 201, widget.text
                assert client.get(orders).status_code == 401
        finally:
            generated.python("tools/stack.py", "down", env=env)


def test_things_svc_is_the_domain_new_domain_generates(tmp_path: Path) -> None:
    # One way to write a domain: the templates, rendered for `things` and formatted as the
    # generator formats them, are things-svc's domain and its tests, byte for byte.
    service = ROOT / "services" / "things-svc"
    values = {"package": "things_svc", **scaffold_names.DomainNames.parse("things").values()}
    planned = scaffold.planned_files(
        scaffold_names.TEMPLATES / "domain", scaffold.DOMAIN_FILES, values
    )
    rendered = {}
    for relative, content in planned.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        rendered[relative] = path
    scaffold.tidy_python(ROOT, [path for path in rendered.values() if path.suffix == ".py"])

    different = [
        str(relative)
        for relative, path in rendered.items()
        if path.read_text(encoding="utf-8") != (service / relative).read_text(encoding="utf-8")
    ]
    assert different == []
