from common.db import Base as CommonBase
from common.db import new_metadata
from common.events import add_inbox
from common.events.revocations import add_revocations


class Base(CommonBase):
    """Base of things-svc's models: its own MetaData, so no other service's tables mix in."""

    __abstract__ = True
    metadata = new_metadata()


# The events things-svc applied (common.events), and the users whose tokens it refuses.
add_inbox(Base.metadata)
add_revocations(Base.metadata)
