import shutil
from pathlib import Path

from .conftest import REPO_ROOT, ToolRunner


def test_every_member_declares_what_it_imports(run_tool: ToolRunner) -> None:
    result = run_tool("check_imports.py", cwd=REPO_ROOT)

    assert result.returncode == 0, result.stdout


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_an_undeclared_import_is_reported(run_tool: ToolRunner, tmp_path: Path) -> None:
    shutil.copyfile(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "packages", tmp_path / "packages", dirs_exist_ok=True)
    service = tmp_path / "services" / "gadgets-svc"
    write(
        service / "pyproject.toml",
        '[project]\nname = "gadgets-svc"\nversion = "0.1.0"\ndependencies = ["fastapi"]\n'
        '[dependency-groups]\ndev = ["common[testing]"]\n',
    )
    # httpx is installed (common's testing extra) but this service's code does not declare it,
    # nor common, which it imports; its tests may use both through the dev group.
    write(service / "src/gadgets_svc/__init__.py", "import fastapi\nimport httpx\n")
    write(service / "src/gadgets_svc/main.py", "from common.app import create_app\n")
    write(service / "tests/test_main.py", "import httpx\nimport pytest\n\nimport gadgets_svc\n")

    result = run_tool("check_imports.py", "--root", str(tmp_path), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "services/gadgets-svc/src/gadgets_svc/__init__.py:2: imports 'httpx', "
        "but gadgets-svc does not declare httpx",
        "services/gadgets-svc/src/gadgets_svc/main.py:1: imports 'common', "
        "but gadgets-svc does not declare common",
    ]
