"""The events' envelope JSON schema, committed as `packages/common/events.schema.json`.

    uv run python tools/event_schema.py           # (re)write it
    uv run python tools/event_schema.py --check   # exit 1 when it differs from the code

Committed, like each service's OpenAPI document: a change to the envelope every service reads
(a field, a type) shows in review. common's tests fail when it is out of date, and so does the
pre-commit hook (this script, `--check`).
"""

import sys

from common.events import event_schema_document
from generated_files import generator_parser, sync_files

SCHEMA_FILE = "packages/common/events.schema.json"


def main(argv: list[str] | None = None) -> int:
    args = generator_parser(__doc__).parse_args(argv)
    root = args.root.resolve()
    document = {root / SCHEMA_FILE: event_schema_document()}
    return sync_files(document, root=root, check=args.check, remedy="make event-schema")


if __name__ == "__main__":
    sys.exit(main())
