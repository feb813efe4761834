from users_svc.domains.auth.models import LoginFailures
from users_svc.domains.auth.routes import root_router, router

__all__ = ["LoginFailures", "root_router", "router"]
