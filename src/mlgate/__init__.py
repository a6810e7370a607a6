"""mlgate: from rows in a database to a versioned, access-controlled prediction API."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]


def __getattr__(name: str) -> Any:
    """`from mlgate import Client` without importing the client (and httpx) for the server."""
    if name in ("Client", "AsyncClient"):
        from mlgate import client

        return getattr(client, name)
    raise AttributeError(f"module 'mlgate' has no attribute {name!r}")
