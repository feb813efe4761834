from users_svc.domains.users.models import User
from users_svc.domains.users.routes import router

__all__ = ["User", "router"]
