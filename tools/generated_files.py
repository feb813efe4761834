"""What every generator here does with its output (OpenAPI documents, the
events' schema, `.env.example` files): write it, or with `--check` show how the committed file
differs and change nothing."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path


def sync_file(path: Path, content: str, *, check: bool, label: str) -> bool:
    """Write `content` to `path` (label: its name in messages), or with `check` print the diff
    from what is there; True when the file was out of date."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current == content:
        return False
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
    return True
