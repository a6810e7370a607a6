"""The provider's discovery document and key set, read over HTTP (the adapter of sso/)."""

from __future__ import annotations

from typing import Any

import httpx

from mlgate.errors import ConfigError

TIMEOUT = 5.0


class Discovery:
    """`issuer`'s /.well-known/openid-configuration, read once, and its JWKS on each ask."""

    def __init__(self, issuer: str, *, client: httpx.Client | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self._client = client or httpx.Client(timeout=TIMEOUT)
        self._document: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def document(self) -> dict[str, Any]:
        if self._document is None:
            found = self._get(self.url)
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise ConfigError(
                    f"the provider at {self.url} names itself {found.get('issuer')!r}, not "
                    f"{self.issuer!r}: set MLGATE_OIDC_ISSUER to exactly its issuer"
                )
            self._document = found
        return self._document

    def jwks(self) -> dict[str, Any]:
        return self._get(str(self.document()["jwks_uri"]))

    def _get(self, url: str) -> dict[str, Any]:
        response = self._client.get(url)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return body
