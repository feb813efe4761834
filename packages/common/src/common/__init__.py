"""What every service shares. Small and domain-free: it never imports a service."""
