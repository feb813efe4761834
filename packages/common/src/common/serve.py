"""`python -m common.serve APP [uvicorn options]`: uvicorn, exiting 0 after a graceful stop.

uvicorn (since 0.29) raises the signal that stopped it again once its graceful shutdown is over,
so a service that finished every open request and closed its pool still dies "by SIGTERM" (exit
status 143), which supervisors and CI count as a crash. This is uvicorn's own command line, every
option included, with a server that ends with status 0 when it stopped cleanly on SIGTERM or
SIGINT.
"""

import contextlib
import importlib
from collections.abc import Iterator

from uvicorn.server import Server

# The module, not the `uvicorn.main` command that the package exports under the same name.
uvicorn_cli = importlib.import_module("uvicorn.main")


class CleanExitServer(Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                # What uvicorn would raise again once it has restored the default handlers.
                self._captured_signals.clear()


def main() -> None:
    uvicorn_cli.Server = CleanExitServer  # type: ignore[attr-defined]  # uvicorn.run builds it
    uvicorn_cli.main()


if __name__ == "__main__":
    main()
