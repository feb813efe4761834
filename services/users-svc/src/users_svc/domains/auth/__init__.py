from users_svc.domains.auth.routes import root_router, router

__all__ = ["root_router", "router"]
