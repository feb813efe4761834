"""No secret in any log line: every record logged while a test runs is scanned (setup, call and
teardown), and a test that logged a bearer token, a JWT, a private key, a password hash or a
`password=...` value fails, with the line shown masked.

It sees what the process logs at the level the settings allow (INFO in the test profile); what
service processes started by a test write to their own log files, the test reads itself.
"""

import logging
from collections.abc import Iterator

import pytest

from common.logs import mask_secrets


class SecretScanner(logging.Handler):
    """Keeps, masked, every log line that holds a secret."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not a secret
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{record.exc_info[1]!r}"
        masked = mask_secrets(text)
        if masked != text:
            self.found.append(f"{record.levelname} {record.name}: {masked}")

    def take(self) -> list[str]:
        found, self.found = self.found, []
        return found


_scanner_key = pytest.StashKey[SecretScanner]()


def _fail_on_secrets(item: pytest.Item, phase: str) -> None:
    found = item.stash[_scanner_key].take()
    if found:
        lines = "\n".join(f"  {line}" for line in found[:10])
        pytest.fail(
            f"a secret was logged during {phase} ({len(found)} line(s), shown masked):\n{lines}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    scanner = SecretScanner()
    item.stash[_scanner_key] = scanner
    logging.getLogger().addHandler(scanner)
    try:
        return (yield)
    finally:
        logging.getLogger().removeHandler(scanner)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    _fail_on_secrets(item, "the test or its set-up")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    _fail_on_secrets(item, "teardown")
    return result
