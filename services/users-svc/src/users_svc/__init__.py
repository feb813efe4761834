"""users-svc: accounts. The only service that knows passwords."""
