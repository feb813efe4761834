"""Migrations: one head, upgrade and downgrade round trip, and models that match the schema."""

# pytest-alembic's own tests, collected from here against this service's migrations.
from pytest_alembic.tests import (  # noqa: F401
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
