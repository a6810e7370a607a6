"""Data source URLs (which carry passwords) are sealed at rest with Fernet (AES-128-CBC plus
HMAC-SHA-256, from the `cryptography` package). The key is derived from the server secret, which
lives outside the database (MLGATE_SECRET_KEY or the home's secret.key file), so a copy of the
database alone does not reveal any credentials."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mlgate.errors import SourceError

SEALED = "fernet:"


class Sealer:
    def __init__(self, server_secret: bytes) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mlgate source credentials"
        ).derive(server_secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, url: str) -> str:
        return SEALED + self._fernet.encrypt(url.encode()).decode()

    def unseal(self, stored: str, *, name: str) -> str:
        """The URL; values stored before sealing existed are returned as they are."""
        if not stored.startswith(SEALED):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED) :].encode()).decode()
        except InvalidToken:
            raise SourceError(
                f"the credentials of source {name!r} cannot be decrypted: the server secret "
                "changed since it was added; remove the source and add it again"
            ) from None
