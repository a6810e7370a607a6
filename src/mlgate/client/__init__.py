"""The Python client: `Client` (sync) and `AsyncClient`, over httpx, with the server's errors as
typed exceptions (`mlgate.client.errors`)."""

from mlgate.client.aio import AsyncClient
from mlgate.client.core import Predictions
from mlgate.client.sync import Batch, Client, Job

__all__ = ["AsyncClient", "Batch", "Client", "Job", "Predictions"]
