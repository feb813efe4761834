"""What every generator here does with the documents it derives from code (OpenAPI documents, the
events' schema, `.env.example` files): write them, or with `--check` show how each committed file
differs, change nothing and exit 1."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generator_parser(doc: str) -> argparse.ArgumentParser:
    """A generator's command line: its description the first line of `doc`, and `--check`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return parser


def sync_files(documents: dict[Path, str], *, root: Path, check: bool, remedy: str) -> int:
    """Write each document to its path, or with `check` print the diff from what is there; the
    exit status: 1 when `check` found a file out of date (`remedy` says what to run)."""
    stale = []
    for path, content in documents.items():
        label = str(path.relative_to(root))
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == content:
            continue
        stale.append(label)
        if check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    fromfile=f"{label} (committed)",
                    tofile=f"{label} (generated)",
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            print(f"wrote {label}")
    if check and stale:
        print(f"\nout of date: {', '.join(stale)}; run `{remedy}`", file=sys.stderr)
        return 1
    return 0
