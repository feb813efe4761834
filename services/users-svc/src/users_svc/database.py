from common.db import Base as CommonBase
from common.db import new_metadata


class Base(CommonBase):
    """Base of users-svc's models: its own MetaData, so no other service's tables mix in."""

    __abstract__ = True
    metadata = new_metadata()
