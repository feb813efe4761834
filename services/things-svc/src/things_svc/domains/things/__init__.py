from things_svc.domains.things.models import Thing
from things_svc.domains.things.routes import router

__all__ = ["Thing", "router"]
