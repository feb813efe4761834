"""Which workspace members does a change affect? Prints one member per line, sorted.

    python tools/affected.py --base main                 # since the merge base, uncommitted too
    python tools/affected.py --base origin/main --head HEAD~1
    python tools/affected.py --base main --format tests  # the folders to hand to pytest
    python tools/affected.py --all --format json         # every member: CI's matrix

A change inside a member affects it and every member depending on it (`Workspace.affected_by`).
CI's first job runs this with the runner's python3, before anything is installed: standard
library only.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from monorepo import Member, Workspace


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def changed_files(root: Path, *, base: str, head: str | None) -> list[str]:
    """Files changed since the merge base of `base` and `head` (three dots, as a pull request).

    Without `head`, the working tree is compared, untracked files included, so a developer can
    ask before committing.
    """
    if head is not None:
        names = git(root, "diff", "--name-only", "--no-renames", f"{base}...{head}")
    else:
        merge_base = git(root, "merge-base", base, "HEAD").strip()
        names = git(root, "diff", "--name-only", "--no-renames", merge_base)
        names += git(root, "ls-files", "--others", "--exclude-standard")
    return sorted({line for line in names.splitlines() if line})


def render(members: list[Member], *, root: Path, output_format: str) -> str:
    if output_format == "json":
        return json.dumps([member.name for member in members])
    if output_format == "tests":
        # A member's tests folder when it has one, else the member itself.
        folders = [
            f"{m.path}/tests" if (root / m.path / "tests").is_dir() else m.path for m in members
        ]
        return "\n".join(folders)
    return "\n".join(member.name for member in members)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    compared = parser.add_mutually_exclusive_group(required=True)
    compared.add_argument("--base", help="git ref the change is compared with")
    compared.add_argument("--all", action="store_true", help="every member, whatever changed")
    parser.add_argument("--head", help="git ref of the change (default: the working tree)")
    parser.add_argument(
        "--format", dest="output_format", choices=["names", "tests", "json"], default="names"
    )
    parser.add_argument("--root", type=Path, help="the workspace root (default: the git top)")
    args = parser.parse_args(argv)

    try:
        root = args.root or Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip())
        workspace = Workspace.load(root)
        if args.all:
            members = list(workspace.members.values())
        else:
            members = workspace.affected_by(changed_files(root, base=args.base, head=args.head))
    except subprocess.CalledProcessError as error:
        print(f"git failed: {error.stderr.strip()}", file=sys.stderr)
        return 2
    output = render(members, root=root, output_format=args.output_format)
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
