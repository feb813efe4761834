"""The events' envelope JSON schema, committed as `packages/common/events.schema.json`.

    uv run python tools/event_schema.py           # (re)write it
    uv run python tools/event_schema.py --check   # exit 1 when it differs from the code

Committed, like each service's OpenAPI document: a change to the envelope every service reads
(a field, a type) shows in review. common's tests fail when it is out of date, and so does the
pre-commit hook (this script, `--check`).
"""

import argparse
import sys
from pathlib import Path

from common.events import event_schema_document
from generated_files import sync_file

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "packages" / "common" / "events.schema.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    document = event_schema_document()
    label = str(SCHEMA_FILE.relative_to(SCHEMA_FILE.parents[2]))
    if sync_file(SCHEMA_FILE, document, check=args.check, label=label) and args.check:
        print("the events' schema is out of date: run `make event-schema`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
