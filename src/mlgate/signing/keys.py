"""Signing keys: the server's private key (MLGATE_SIGNING_KEY) and the public keys it trusts.

Keys are elliptic-curve keys in PEM, the kind `model_signing sign key` takes (P-256, P-384 or
P-521). A key is named by its fingerprint, the sha256 of its public key's PEM: the `hint` that
model-signing writes into each signature, so a signature says which key made it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlgate.errors import ConfigError

_CURVES = ("secp256r1", "secp384r1", "secp521r1")


def new_private_key() -> bytes:
    """A fresh P-256 private key as unencrypted PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """The key's id: sha256 of its public PEM, in hex (model-signing's key hint)."""
    return hashlib.sha256(public_pem(key)).hexdigest()


def hash_for(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The digest ECDSA uses with this key's curve (as model-signing picks it)."""
    size = key.curve.key_size
    return hashes.SHA256() if size == 256 else hashes.SHA384() if size == 384 else hashes.SHA512()


@dataclass(frozen=True)
class SigningKey:
    """The private key this server signs versions with."""

    private: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def from_pem(cls, pem: bytes, *, where: str) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(
                f"{where} is not an unencrypted PEM private key ({exc}); make one with "
                "`openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
            raise ConfigError(f"{where} must be an elliptic-curve key on P-256, P-384 or P-521")
        return cls(key)

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return fingerprint(self.public)


@dataclass(frozen=True)
class Keyring:
    """The public keys whose signatures are trusted, by fingerprint. Rotation: trust the new key
    and the previous one together; versions signed by either verify until the old one is
    dropped (re-sign them with `mlgate models sign --all` first)."""

    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    @classmethod
    def of(cls, *keys: ec.EllipticCurvePublicKey) -> Keyring:
        return cls({fingerprint(k): k for k in keys})

    def with_keys(self, *keys: ec.EllipticCurvePublicKey) -> Keyring:
        return Keyring({**self.keys, **Keyring.of(*keys).keys})

    def get(self, key_id: str) -> ec.EllipticCurvePublicKey | None:
        return self.keys.get(key_id)


def load_public(pem: bytes, *, where: str) -> ec.EllipticCurvePublicKey:
    """A PEM public key (or a private key, whose public half is taken)."""
    try:
        if b"PRIVATE KEY" in pem:
            return SigningKey.from_pem(pem, where=where).public
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where} is not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise ConfigError(f"{where} must be an elliptic-curve key on P-256, P-384 or P-521")
    return key


def read_public_keys(paths: list[Path]) -> list[ec.EllipticCurvePublicKey]:
    """The keys in `paths`: PEM files, or folders whose *.pem and *.pub files are read."""
    found: list[ec.EllipticCurvePublicKey] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".pem", ".pub"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            try:
                pem = file.read_bytes()
            except OSError as exc:
                raise ConfigError(f"trusted key {file} could not be read: {exc}") from None
            found.append(load_public(pem, where=str(file)))
    return found
