"""Alembic at the repository root (`[tool.alembic]` of the root pyproject.toml): `uv run --package
things-svc alembic upgrade head` runs here, and uv tells the command nothing of the package. uv is
its parent process, though: this script reads the service from uv's arguments and runs the same
Alembic command again in that service's folder, on its own configuration.
"""

import os
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"


def package_named_by_uv() -> str | None:
    """The `--package` of the nearest `uv run` among this process's ancestors."""
    for process in psutil.Process().parents():
        try:
            arguments = process.cmdline()
        except psutil.Error:
            return None
        if not arguments or Path(arguments[0]).name not in ("uv", "uv.exe"):
            continue
        for index, argument in enumerate(arguments):
            if argument == "--package" and index + 1 < len(arguments):
                return arguments[index + 1]
            if argument.startswith("--package="):
                return argument.partition("=")[2]
        return None
    return None


def refuse(reason: str) -> None:
    known = sorted(path.parent.name for path in SERVICES.glob("*/pyproject.toml"))
    sys.exit(
        f"alembic at the repository root acts on one service, and {reason}. Name it:\n"
        "  uv run --package <service> alembic ...    (here, at the root)\n"
        "  cd services/<service> && uv run alembic ...\n"
        "  uv run --directory services/<service> alembic ...\n"
        "  make migrate SERVICE=<service>    (upgrade head, on the make-up database)\n"
        f"services: {', '.join(known)}"
    )


service = package_named_by_uv()
if service is None:
    refuse("no `uv run --package <service>` names it")
elif not (SERVICES / str(service) / "pyproject.toml").is_file():
    refuse(f"{service!r} is not one (services/{service} has no pyproject.toml)")
else:
    os.chdir(SERVICES / service)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "alembic", *sys.argv[1:]])
