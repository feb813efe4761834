"""`python -m common.serve APP [uvicorn options]`: uvicorn as the images and `make up` run it.

It is uvicorn's own command line, every option included, with two things that concern the whole
process, and so belong to the program that runs the app rather than to the app (tests and
notebooks that import an app get neither):

- **Exit status 0 after a graceful stop.** uvicorn (since 0.29) raises the signal that stopped it
  again once its graceful shutdown is over, to the handler that was installed before it started,
  so a service that finished every open request and closed its pool would still die "by SIGTERM"
  (exit status 143), which supervisors and CI count as a crash. The handler installed here turns
  that second signal into a normal exit.
- **The garbage collector tuned for a server** (docs/speed.md has the figures): a request makes
  hundreds of short-lived containers, so at Python's default young-generation threshold (700) the
  collector runs every request or two, and its older generations often enough to show in the
  tail latency; and what the imports made lives as long as the process, so it is frozen out of
  the collector's full passes.
"""

import contextlib
import gc
import importlib
import signal
import sys
from collections.abc import Sequence
from types import FrameType

# The module, not the `uvicorn.main` command that the package exports under the same name.
uvicorn_cli = importlib.import_module("uvicorn.main")

# Allocations between two collections of the young generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def _stopped(signum: int, _: FrameType | None) -> None:
    """uvicorn has shut down gracefully and raises the stopping signal again: exit cleanly."""
    sys.exit(0)


def import_app(arguments: Sequence[str]) -> None:
    """Import the app module named on the command line, as uvicorn is about to: it then finds
    it imported. Anything wrong is left for uvicorn to report in its own words."""
    with contextlib.suppress(Exception):
        context = uvicorn_cli.main.make_context("uvicorn", list(arguments), resilient_parsing=True)
        app_dir = context.params.get("app_dir")
        if app_dir is not None:
            sys.path.insert(0, app_dir)
        importlib.import_module(context.params["app"].split(":")[0])


def tune_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)


def main() -> None:
    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, _stopped)
    import_app(sys.argv[1:])
    tune_garbage_collector()
    uvicorn_cli.main()


if __name__ == "__main__":
    main()
