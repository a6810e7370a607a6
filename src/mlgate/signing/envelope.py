"""The OpenSSF Model Signing format (v1.0), key-pair mode, written and checked in memory.

A signature is a Sigstore bundle (media type v0.3) whose DSSE envelope carries an in-toto
statement: subject = the model's name and a sha256 over its files' digests, predicate type
``https://model_signing/signature/v1.0``, predicate = the serialization (files, sha256) and one
resource per file (name, algorithm, digest). The envelope is signed with ECDSA over DSSE's PAE;
the bundle names the key by its hint (sha256 of the public PEM). This is byte-for-byte the
layout `model_signing sign key` writes to ``model.sig``.

Why not the `model-signing` library itself (measured on 2026-12-08, Python 3.11, in this venv):
version 1.1.1 (and 1.0.1) does not import: ``model_signing/__init__`` imports
``_signing/sign_certificate.py``, which does ``from OpenSSL import crypto`` although pyOpenSSL is
not among its declared dependencies (``ModuleNotFoundError: No module named 'OpenSSL'``).
pyOpenSSL 26.4.0 requires ``cryptography<51`` (we run 51.0.1; installing it would downgrade the
cryptography every other part of mlgate uses), and the resolver's alternative, pyOpenSSL 22.0.0,
fails at import with cryptography 51 (``AttributeError: module 'lib' has no attribute
'GEN_EMAIL'``). Beyond that, it pulls 15 packages (sigstore, tuf, securesystemslib,
rfc3161-client, ...) for the network modes we do not use, its import took 0.42 s and 795
modules (OpenSSL stubbed out), about as long as importing the whole of mlgate's composition root,
and its key signer and verifier read keys only from file paths and hash files only on disk,
while our artifacts are bytes in an artifact store (local or S3). The format is small; these
~100 lines write and check it with `cryptography`, which mlgate already depends on.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from mlgate.signing.keys import Keyring, SigningKey, hash_for

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


class Untrusted(Exception):
    """The bundle was made by a key that is not in the keyring (its fingerprint is `key_id`)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class Invalid(Exception):
    """The bundle is malformed, or its signature does not verify."""


@dataclass(frozen=True)
class Opened:
    """A verified bundle's content: who signed it, the model's name and each file's sha256."""

    key_id: str
    subject: str
    files: dict[str, str]


def statement(subject: str, files: Mapping[str, str]) -> dict[str, Any]:
    """The in-toto statement over `files` (name -> sha256 hex), resources in name order."""
    names = sorted(files)
    root = hashlib.sha256(b"".join(bytes.fromhex(files[n]) for n in names)).hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": SERIALIZATION,
            "resources": [{"name": n, "algorithm": "sha256", "digest": files[n]} for n in names],
        },
    }


def pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of an in-toto payload (DSSE v1.0 protocol)."""
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def seal(key: SigningKey, subject: str, files: Mapping[str, str]) -> str:
    """The bundle (JSON) signing `files` under the model name `subject`."""
    payload = json.dumps(statement(subject, files), sort_keys=True).encode()
    signature = key.private.sign(pae(payload), ec.ECDSA(hash_for(key.public)))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.key_id}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return json.dumps(bundle, indent=2)


def key_id_of(bundle: str) -> str:
    """Which key the bundle says made it (not verified)."""
    try:
        return str(json.loads(bundle)["verificationMaterial"]["publicKey"]["hint"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Invalid(f"not a model signature bundle ({exc})") from None


def open_bundle(bundle: str, keyring: Keyring) -> Opened:
    """The bundle's signed content, once its signature verifies with a key of `keyring`.
    Raises Untrusted (no such key in the keyring) or Invalid (anything else wrong)."""
    key_id = key_id_of(bundle)
    key = keyring.get(key_id)
    if key is None:
        raise Untrusted(key_id)
    try:
        envelope = json.loads(bundle)["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        sig = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise Invalid(f"payload type {envelope['payloadType']!r}")
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise Invalid(f"not a model signature bundle ({exc})") from None
    try:
        key.verify(sig, pae(payload), ec.ECDSA(hash_for(key)))
    except InvalidSignature:
        raise Invalid("the signature does not verify: the bundle was changed") from None
    return _content(key_id, payload)


def _content(key_id: str, payload: bytes) -> Opened:
    try:
        signed = json.loads(payload)
        if signed["_type"] != STATEMENT_TYPE or signed["predicateType"] != PREDICATE_TYPE:
            raise Invalid(f"a statement of type {signed['predicateType']!r}")
        (subject,) = signed["subject"]
        files = {r["name"]: r["digest"] for r in signed["predicate"]["resources"]}
        for resource in signed["predicate"]["resources"]:
            if resource["algorithm"] != "sha256":
                raise Invalid(f"digest algorithm {resource['algorithm']!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise Invalid(f"not a model signing statement ({exc})") from None
    if statement(subject["name"], files)["subject"][0]["digest"] != subject["digest"]:
        raise Invalid("the statement's root digest does not match its files")
    return Opened(key_id, str(subject["name"]), files)
