"""things-svc: things owned by users."""
