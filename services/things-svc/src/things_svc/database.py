from common.db import Base as CommonBase
from common.db import new_metadata
from common.events import add_inbox
from common.events.revocations import add_erasures, add_revocations


class Base(CommonBase):
    """Base of things-svc's models: its own MetaData, so no other service's tables mix in."""

    __abstract__ = True
    metadata = new_metadata()


# The events things-svc applied (common.events), the users whose tokens it refuses, and the
# erased ones, whose writes it refuses too.
add_inbox(Base.metadata)
add_revocations(Base.metadata)
add_erasures(Base.metadata)
