"""A copy of a git working tree: what the benchmark, the scaffold suite and the docs' commands
change without touching the real one."""

import shutil
import subprocess
from pathlib import Path


def copy_repository(root: Path, target: Path, *, commit: bool = False) -> Path:
    """The working tree's files as git sees them (tracked or new, never ignored) in `target`.

    With `commit`, the copy is a repository of its own on a `main` branch holding those files in
    one commit, for what asks git about changes.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for relative in filter(None, listed.split("\0")):
        source = root / relative
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    if commit:
        identity = ["-c", "user.name=copy", "-c", "user.email=copy@localhost"]
        for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "copy"]):
            subprocess.run(["git", *identity, *command], cwd=target, check=True)
    return target
