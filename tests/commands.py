"""A command run to its end by a test, as a user would type it: its output, or a failure that
shows why it failed."""

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_to_success(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: str = "",
    what: str | None = None,
) -> str:
    """Run `command` (at most 15 minutes) and return its output; a non-zero exit fails the test
    with `what` (the command, unless said) and why it failed."""
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env=dict(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        raise AssertionError(
            f"{what or ' '.join(command)}: still running after {exc.timeout:.0f}s:\n"
            + why_it_failed(output)
        ) from None
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what or ' '.join(command)}:\n{why_it_failed(output)}"
    return output


def why_it_failed(output: str) -> str:
    """The part of a failed command's output that says why: pytest's report from its first
    ERRORS or FAILURES section on (captured logs can run long before it), or the stacks a hang
    dumped (pytest's faulthandler_timeout), else the tail."""
    report = re.search(r"^=+ (ERRORS|FAILURES) =+$|^Timeout \(", output, flags=re.MULTILINE)
    if report is None:
        return output[-6000:]
    return output[report.start() :][:12000] + "\n...\n" + output[-1500:]


def _text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
