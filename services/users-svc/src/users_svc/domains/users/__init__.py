from users_svc.domains.users.models import LoginSession, User
from users_svc.domains.users.routes import router

__all__ = ["LoginSession", "User", "router"]
