"""The HTTP edge: app factory, routers per resource, one error table."""
