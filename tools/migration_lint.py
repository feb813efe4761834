"""squawk on the SQL of each Alembic revision of each service (`make lint`, a hook, CI).

Each revision's SQL is what `alembic upgrade <down>:<revision> --sql` prints (offline mode, the
service's own env.py), and squawk reads it as one file: a `-- squawk-ignore-file <rule> --
<reason>` comment the revision emits (`op.execute`) waives the rule for that revision alone.
The rest of squawk's configuration is .squawk.toml. docs/development.md, "Migration linting".

    python tools/migration_lint.py [services/things-svc ...]    (default: every service)
"""

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parents[1]
# squawk's waiver comments; each says why after a second `--` (`-- squawk-ignore-file
# ban-drop-column -- nothing reads it since 1.4`), which squawk reads as a comment of its own.
WAIVER = re.compile(r"^\s*--\s*(squawk-ignore.*)$", re.MULTILINE)
REASON = re.compile(r"\s--\s*\w")


def lint(service: Path, squawk: str) -> list[bool]:
    """For each revision of the service, base first: whether squawk finds fault with it."""
    config = Config(toml_file=service / "pyproject.toml")
    faults = []
    for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions())):
        down = script.down_revision
        start = (down if isinstance(down, str) else down[0]) if down else "base"
        config.output_buffer = io.StringIO()
        command.upgrade(config, f"{start}:{script.revision}", sql=True)
        label = f"{os.path.relpath(script.path)} (upgrade {start}:{script.revision})"
        sql = config.output_buffer.getvalue()
        unexplained = [waiver for waiver in WAIVER.findall(sql) if not REASON.search(waiver)]
        for waiver in unexplained:
            print(f"{label}: a waiver says why after a second '--': {waiver}")
        found = subprocess.run(
            [squawk, "--config", str(ROOT / ".squawk.toml"), "--stdin-filepath", label],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode != 0:  # squawk's "0 issues" line for each clean revision left out
            print(found.stdout + found.stderr, end="", flush=True)
        faults.append(found.returncode != 0 or bool(unexplained))
    return faults


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)  # not Alembic's line per revision
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    squawk = shutil.which("squawk", path=path) or sys.exit("squawk not found: run `make sync`")
    services = [Path(arg) for arg in argv] or [p.parent for p in ROOT.glob("services/*/alembic")]
    faults = [fault for service in sorted(services) for fault in lint(service.resolve(), squawk)]
    print(f"squawk: {sum(faults)} of {len(faults)} revisions to fix or waive")
    return 1 if any(faults) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
