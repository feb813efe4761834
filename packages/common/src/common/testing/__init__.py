"""Test support for services: a real Postgres per test session, rolled back per test.

The pytest plugin in `common.testing.plugin` is registered through an entry point; a service's
`tests/conftest.py` only describes the service with a `service` fixture returning a
`ServiceUnderTest`.
"""

from common.testing.service import ServiceUnderTest

__all__ = ["ServiceUnderTest"]
