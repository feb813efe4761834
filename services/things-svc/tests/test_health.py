"""Live and ready, as every service answers them: `common`'s tests, run against this service."""

from common.testing.health import test_live, test_ready_when_migrated_to_head  # noqa: F401
