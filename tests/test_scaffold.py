"""`make new-service` and `make new-domain`, run in a copy of this repository.

The quick tests check what the generators refuse (a bad name or a second run changes no byte of
the repository) and what the answers record for `copier update`. The `scaffold` tests (`make
test-scaffold`, a few minutes) generate a service and domains with the Makefile in a copy that is
a git repository, then run on it what CI and a developer would: lint, types, `alembic check`, the
services' tests, the Compose tests, CI's plan for it, the native stack serving the new service to
a user holding a users-svc token; and in a clone of it, a change of the templates brought by
`copier update`.
"""

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from commands import run_to_success
from sqlalchemy.engine import URL

import scaffold
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


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A copy that is a git repository of its own: what copier records a commit of."""
    return copy_repository(ROOT, tmp_path / "repo", commit=True)


def scaffold_main(repo: Path, *args: str) -> int:
    return scaffold.main(["--root", str(repo), *args])


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@localhost"]
    command = ["git", *identity, *args]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, check=True).stdout


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
    assert {path for path in created if created[path] != before.get(path)} - {
        path for path in created if path.startswith("services/orders-svc/")
    } == {
        "uv.lock",
        "pyproject.toml",
        "infra/docker-compose.yml",
        "infra/prometheus/prometheus.yml",
        "infra/.env.example",
        "deploy/kubernetes/services/orders-svc/kustomization.yaml",
        "deploy/kubernetes/services/orders-svc/deployment.yaml",
        "deploy/kubernetes/overlays/dev/kustomization.yaml",
        "deploy/kubernetes/overlays/prod/kustomization.yaml",
        "deploy/kubernetes/overlays/dev/postgres/statefulset.yaml",
        "deploy/kubernetes/overlays/dev/pgbouncer.ini",
        "deploy/kubernetes/base/pgbouncer/pgbouncer.ini",
    }

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


def test_each_answers_file_records_the_templates_commit_and_a_path_any_clone_holds(
    git_repo: Path,
) -> None:
    assert scaffold_main(git_repo, "new-domain", "things-svc", "widgets") == 0

    answers = yaml.safe_load(
        (git_repo / "services/things-svc/.copier-answers.widgets.yml").read_text()
    )

    assert answers["_src_path"] == "../.."
    assert answers["_commit"] == git(git_repo, "describe", "--tags", "--always").strip()
    assert (answers["template"], answers["domain"], answers["item"]) == (
        "domain",
        "widgets",
        "widget",
    )


def test_uncommitted_template_changes_are_refused_and_change_nothing(
    git_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The answers would record a commit that does not hold the template they were made from.
    with (git_repo / "copier.yml").open("a") as copier_yml:
        copier_yml.write("# an edit\n")
    before = snapshot(git_repo)

    assert scaffold_main(git_repo, "new-domain", "things-svc", "widgets") == 1
    assert "uncommitted changes" in capsys.readouterr().err
    assert snapshot(git_repo) == before


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
        copy = Copy(copy_repository(ROOT, folder / "repo", commit=True))
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
    generated.python("tools/generated_files.py", "env-examples", "--check")
    # squawk on every revision, the generated ones with the rest (make lint).
    assert "squawk: 0 of " in generated.python("tools/migration_lint.py")
    # CI checks the new service with no edit of its workflow: it is one of the members the
    # matrix lists, and its job's check migrates it.
    assert '"orders-svc"' in generated.python(
        "tools/affected.py", "--all", "--format", "json", "--root", "."
    )
    assert "alembic check" in generated.python("tools/member_check.py", "orders-svc", "--print")


@pytest.mark.scaffold
def test_the_new_service_is_deployed_by_both_overlays(generated: Copy) -> None:
    # Render, strict validation for every supported Kubernetes version, the budget, yamllint;
    # then checkov in its own environment; then the manifests' tests, which hold every overlay
    # to deploying every service of the workspace: what `.ci/run` runs on the repository.
    checked = generated.run("make", "manifests-check")
    checkov = generated.run("make", "manifests-checkov")
    generated.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_manifests.py")
    for overlay in ("dev", "prod"):
        rendered = (generated.root / f".local/rendered-manifests/{overlay}.yaml").read_text()
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
        "tests/test_infra_observability.py",
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


# -- copier update, in a clone of the generated copy ------------------------------------------

# A change of each template, as a later commit of the repository would bring it: a domain's 404
# says it another way (its test with it), and a service gains a test module.
DOMAIN_CHANGE = ("No {{ label }} with this id.", "There is no {{ label }} with this id.")
SERVICE_TEST = "tests/test_package.py"


def change_the_templates(root: Path) -> None:
    domain = root / "tools/templates/domain"
    for template in (
        "src/{{ package }}/domains/{{ domain }}/service.py.jinja",
        "tests/domains/{{ domain }}/test_routes.py.jinja",
    ):
        path = domain / template
        text = path.read_text()
        assert DOMAIN_CHANGE[0] in text, path
        path.write_text(text.replace(*DOMAIN_CHANGE))
    (root / "tools/templates/service" / f"{SERVICE_TEST}.jinja").write_text(
        "import {{ package }}\n\n\ndef test_the_package_names_its_service() -> None:\n"
        "    assert {{ package }}.__doc__ is not None\n"
        '    assert {{ package }}.__doc__.startswith("{{ service }}: ")\n'
    )


@pytest.fixture(scope="module")
def updated(generated: Copy) -> Iterator[Copy]:
    """A clone of the generated copy, its generated code committed, where the templates then
    changed (a later commit) and `copier update` ran in orders-svc, as docs/development.md says:
    for the service, then for its domain `orders`, after a change of the developer's own."""
    git(generated.root, "add", "-A")
    git(generated.root, "commit", "-qm", "make new-service NAME=orders-svc, and domains")
    with scratch_dir("scaffold-clone-") as folder:
        clone = Copy(folder / "repo")
        git(folder, "clone", "-q", str(generated.root), str(clone.root))
        clone.run("make", "sync")
        service = clone.root / "services" / "orders-svc"
        models = service / "src/orders_svc/domains/orders/models.py"
        models.write_text(models.read_text() + "\n# Kept seven years, as the law asks.\n")
        git(clone.root, "commit", "-qam", "A note of the developer's own")
        change_the_templates(clone.root)
        git(clone.root, "add", "-A")
        git(clone.root, "commit", "-qm", "The templates change")
        copier = ["uv", "run", "--no-sync", "copier", "update", "--trust", "--defaults"]
        clone.run(*copier, "--vcs-ref=HEAD", cwd=service)
        git(clone.root, "add", "-A")
        git(clone.root, "commit", "-qm", "copier update: orders-svc")
        clone.run(
            *copier, "--vcs-ref=HEAD", "--answers-file", ".copier-answers.orders.yml", cwd=service
        )
        yield clone


@pytest.mark.scaffold
def test_copier_update_brings_a_template_change_into_a_generated_service_and_domain(
    updated: Copy, postgres_server: URL
) -> None:
    service = updated.root / "services" / "orders-svc"
    head = git(updated.root, "describe", "--tags", "--always", "HEAD~1").strip()
    status = git(updated.root, "status", "--porcelain")

    assert (service / SERVICE_TEST).is_file()
    assert (
        DOMAIN_CHANGE[1].replace("{{ label }}", "order")
        in (service / "src/orders_svc/domains/orders/service.py").read_text()
    )
    assert "Kept seven years" in (service / "src/orders_svc/domains/orders/models.py").read_text()
    # The refunds domain took no part in the update of orders.
    assert (
        DOMAIN_CHANGE[0].replace("{{ label }}", "refund")
        in (service / "src/orders_svc/domains/refunds/service.py").read_text()
    )
    assert yaml.safe_load((service / ".copier-answers.yml").read_text())["_commit"] == head
    assert ".rej" not in status
    assert "<<<<<<<" not in git(updated.root, "diff")
    env = {
        "TEST_DATABASE_URL": postgres_server.render_as_string(hide_password=False),
        "PYTEST_XDIST_WORKER": "update",
    }
    updated.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "services/orders-svc", env=env)


def test_things_svc_is_the_domain_new_domain_generates(tmp_path: Path) -> None:
    # One way to write a domain: the domain template, rendered by copier for `things`, is
    # things-svc's domain and its tests, byte for byte. Rendered from the working tree's files.
    source = tmp_path / "template"
    for path in ("copier.yml", "pyproject.toml"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / path, source / path)
    shutil.copytree(ROOT / scaffold.TEMPLATES, source / scaffold.TEMPLATES)
    rendered = tmp_path / "things-svc"
    rendered.mkdir()
    answers = {"package": "things_svc", "domain": "things", "item": "thing"}
    scaffold.Templates(source, commit=None).render(
        "domain", rendered, {**answers, "revision": "0", "down_revision": ""}
    )
    service = ROOT / "services" / "things-svc"

    def texts(folder: Path) -> dict[str, str]:
        files = (path for path in folder.rglob("*") if "__pycache__" not in path.parts)
        return {str(path.relative_to(folder)): path.read_text() for path in files if path.is_file()}

    for folder in ("src/things_svc/domains/things", "tests/domains/things"):
        assert texts(rendered / folder) == texts(service / folder)
