from things_svc.domains.shares.models import Share
from things_svc.domains.shares.routes import router

__all__ = ["Share", "router"]
