"""The CLI against a remote mlgate server: `--url` (or MLGATE_URL) plus a token (MLGATE_TOKEN,
from `mlgate login`, or an API key). Problems the server answers become our own errors, so the
CLI prints them exactly as it prints local ones."""

from __future__ import annotations

from typing import Any

import typer

from mlgate import errors

_ERROR_FOR: dict[int, type[errors.MlgateError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    410: errors.Gone,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedFormat,
    422: errors.InvalidInput,
    503: errors.NotReady,
}


class Remote:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.url = url
        self.token = token

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise errors.NotReady(f"cannot reach {self.url}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def close(self) -> None:
        self._client.close()


def remote_of(ctx: typer.Context) -> Remote | None:
    """The remote server this invocation talks to, or None to work on the local home."""
    found = ctx.find_root().meta.get("remote")
    return found if isinstance(found, Remote) else None


def _error(response: Any) -> errors.MlgateError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or f"the server answered {response.status_code}")
    for field in body.get("errors") or []:
        detail += f"\n  {field.get('field')}: {field.get('message')}"
    status = response.status_code
    if status == 429:
        retry = int(response.headers.get("retry-after", "1") or 1)
        return errors.TooManyRequests(detail, retry_after=retry)
    cls = _ERROR_FOR.get(status, errors.MlgateError)
    if cls in (errors.Unauthenticated, errors.PermissionDenied):
        return cls(detail, code=str(body.get("code") or ""))
    return cls(detail)
