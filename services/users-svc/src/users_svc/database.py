from common.db import Base as CommonBase
from common.db import new_metadata
from common.events import add_outbox


class Base(CommonBase):
    """Base of users-svc's models: its own MetaData, so no other service's tables mix in."""

    __abstract__ = True
    metadata = new_metadata()


# The events users-svc publishes wait here for its relay (common.events).
add_outbox(Base.metadata)
