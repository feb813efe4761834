"""Each service's OpenAPI document, committed beside it as `services/<svc>/openapi.json`.

    uv run python tools/openapi.py                      # (re)write every service's document
    uv run python tools/openapi.py --service orders-svc # one service's
    uv run python tools/openapi.py --check              # exit 1 when one differs from its code

The document is the one the service serves at /openapi.json, from the app its `main.py` builds:
committed, a change to the contract (a field, a status, a route) shows in review. Each service's
tests fail when it is out of date, and so does the pre-commit hook (this script, `--check`).
"""

import importlib
import sys

from common.testing.openapi import OPENAPI_FILE, openapi_document
from generated_files import generator_parser, sync_files
from monorepo import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = generator_parser(__doc__)
    parser.add_argument("--service", action="append", help="only this service (repeatable)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    services = {facts.name: facts for facts in Workspace.load(root).services()}
    unknown = sorted(set(args.service or ()) - set(services))
    if unknown:
        print(f"error: no service named {', '.join(unknown)} in services/", file=sys.stderr)
        return 2
    documents = {
        services[name].directory / OPENAPI_FILE: openapi_document(
            importlib.import_module(f"{services[name].package}.main").app
        )
        for name in args.service or services
    }
    return sync_files(documents, root=root, check=args.check, remedy="make openapi")


if __name__ == "__main__":
    sys.exit(main())
