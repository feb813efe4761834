"""`python -m common.serve APP [uvicorn options]`: uvicorn as the images and `make up` run it.

It is uvicorn's own command line, every option included, with two things that concern the whole
process, and so belong to the program that runs the app rather than to the app (tests and
notebooks that import an app get neither):

- **Exit status 0 after a graceful stop.** uvicorn (since 0.29) raises the signal that stopped it
  again once its graceful shutdown is over, to the handler that was installed before it started,
  so a service that finished every open request and closed its pool would still die "by SIGTERM"
  (exit status 143), which supervisors and CI count as a crash. The handler installed here turns
  that second signal into a normal exit.
- **uvicorn's own lines through the app's handler** (common.logs: JSON in production, with the
  request and trace IDs): its logging configuration leaves its loggers without handlers of their
  own, unless `--log-config` gives another.
- **Settings refused in one line**: a setting the service refuses at import (a database URL of
  another scheme, an unsafe production value) is printed as one line per problem, naming the
  variable, and the process exits 1, rather than as uvicorn's traceback of the import.
- **Metrics of several workers added up**: with `--workers` above 1 (or `WEB_CONCURRENCY`),
  `PROMETHEUS_MULTIPROC_DIR` is set (a new temporary folder, or the one given, emptied) before
  the app is imported, so each worker writes its metrics there and the metrics endpoint, served
  by whichever worker a scrape reaches, adds them up (common.metrics).
- **Forwarded headers read by the app alone**: uvicorn believes `X-Forwarded-For` from loopback
  unless told otherwise, so any local client (or a proxy on the same host that passes the header
  through) would choose its own address. `--no-proxy-headers` turns that off, and the app reads
  the header from the networks in `TRUSTED_PROXIES` (common.app), the same in tests; uvicorn's own
  `--proxy-headers`, `--forwarded-allow-ips` or `FORWARDED_ALLOW_IPS` stop the start, naming
  `TRUSTED_PROXIES`, rather than be ignored without a word.
- **The garbage collector tuned for a server** (docs/speed.md has the figures): a request makes
  hundreds of short-lived containers, so at Python's default young-generation threshold (700) the
  collector runs every request or two, and its older generations often enough to show in the
  tail latency; and what the imports made lives as long as the process, so it is frozen out of
  the collector's full passes.
"""

import contextlib
import gc
import importlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import ValidationError

# Not common.metrics: prometheus_client must not be imported before the variable is set.
from common.settings import MULTIPROCESS_DIR_ENV, StartupError

# The module, not the `uvicorn.main` command that the package exports under the same name.
uvicorn_cli = importlib.import_module("uvicorn.main")

# uvicorn's loggers keep no handler and pass their lines on to the root logger's (the app's).
UVICORN_LOG_CONFIG = Path(__file__).with_name("uvicorn-logging.json")

# Allocations between two collections of the young generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def _stopped(signum: int, _: FrameType | None) -> None:
    """uvicorn has shut down gracefully and raises the stopping signal again: exit cleanly."""
    sys.exit(0)


def command_line(arguments: Sequence[str]) -> dict[str, Any]:
    """uvicorn's options as its command line reads them (environment variables included); empty
    when they do not parse, which uvicorn then reports in its own words."""
    with contextlib.suppress(Exception):
        context = uvicorn_cli.main.make_context("uvicorn", list(arguments), resilient_parsing=True)
        return dict(context.params)
    return {}


def import_app(options: dict[str, Any]) -> None:
    """Import the app module named on the command line, as uvicorn is about to: it then finds
    it imported. Settings it refuses, and an app `create_app` refuses to build, end the process
    with their message; anything else wrong is left for uvicorn to report in its own words."""
    try:
        app_dir = options.get("app_dir")
        if app_dir is not None:
            sys.path.insert(0, app_dir)
        importlib.import_module(options["app"].split(":")[0])
    except ValidationError as exc:
        sys.exit("\n".join(f"error: {problem}" for problem in problems(exc)))
    except StartupError as exc:
        sys.exit(f"error: {exc}")
    except Exception:
        return


def problems(error: ValidationError) -> list[str]:
    """One line per problem: a refusal's own sentence (it names the variable), else the field
    and what is wrong with its value."""
    return [
        problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "value_error"
        else f"{error.title}.{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
        for problem in error.errors()
    ]


def share_metrics_between_workers(options: dict[str, Any]) -> None:
    """Several workers write their metrics to one folder (before anything imports
    prometheus_client, which reads the variable once)."""
    # uvicorn reads WEB_CONCURRENCY itself; the resilient parse above does not.
    workers = options.get("workers") or int(os.environ.get("WEB_CONCURRENCY") or 1)
    if workers <= 1:
        return
    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not given:
        os.environ[MULTIPROCESS_DIR_ENV] = tempfile.mkdtemp(prefix="prometheus-")
        return
    # Values left by an earlier run would be added to this one's.
    for stale in Path(given).glob("*.db"):
        stale.unlink()


def refuse_uvicorn_proxy_settings(arguments: Sequence[str]) -> None:
    given = [
        argument.split("=")[0]
        for argument in arguments
        if argument.startswith(("--proxy-headers", "--forwarded-allow-ips"))
    ]
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        given.append("FORWARDED_ALLOW_IPS")
    if given:
        sys.exit(
            f"error: {', '.join(given)}: the app reads forwarded headers itself; list the "
            "proxies' networks in TRUSTED_PROXIES instead (docs/deployment.md)"
        )


def tune_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)


def main() -> None:
    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, _stopped)
    arguments = sys.argv[1:]
    refuse_uvicorn_proxy_settings(arguments)
    options = command_line(arguments)
    share_metrics_between_workers(options)
    arguments = [*arguments, "--no-proxy-headers"]
    if not any(argument.startswith("--log-config") for argument in arguments):
        arguments.append(f"--log-config={UVICORN_LOG_CONFIG}")
    sys.argv[1:] = arguments
    import_app(options)
    tune_garbage_collector()
    uvicorn_cli.main()


if __name__ == "__main__":
    main()
