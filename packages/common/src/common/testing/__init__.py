"""Test support for services: a real Postgres per test session, rolled back per test.

The pytest plugin in `common.testing.plugin` is registered through an entry point; a service's
`tests/conftest.py` only describes the service with a `service` fixture returning a
`ServiceUnderTest`.
"""

from common.testing.dependencies import threaded_dependencies
from common.testing.matrices import (
    READ_ONLY,
    bad_token_failures,
    every_row,
    make_item_for,
    mass_assignment_failures,
)
from common.testing.openapi import (
    OPENAPI_FILE,
    Operation,
    app_operations,
    call,
    openapi_document,
    operations,
)
from common.testing.service import ServiceUnderTest
from common.testing.tokens import (
    TokenFactory,
    forged_authorizations,
    jwks_url_for_tests,
    signing_key_for_tests,
)

__all__ = [
    "OPENAPI_FILE",
    "READ_ONLY",
    "Operation",
    "ServiceUnderTest",
    "TokenFactory",
    "app_operations",
    "bad_token_failures",
    "call",
    "every_row",
    "forged_authorizations",
    "jwks_url_for_tests",
    "make_item_for",
    "mass_assignment_failures",
    "openapi_document",
    "operations",
    "signing_key_for_tests",
    "threaded_dependencies",
]
