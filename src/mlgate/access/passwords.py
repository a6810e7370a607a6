"""Password hashing with Argon2id (argon2-cffi), at OWASP's recommended minimum or above.

OWASP's Password Storage Cheat Sheet: Argon2id with at least 19 MiB of memory, 2 iterations and
1 degree of parallelism. We use 2 lanes: the same work per hash on one core, twice the memory
an attacker's parallel guesses must pay for.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from mlgate.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=2, type=Type.ID)


@cache
def _dummy() -> str:
    """Verified against when a login names no known user, so that the answer takes as long.
    Made at first use: a hash costs about 60 ms, which every process start paid at import."""
    return _HASHER.hash("mlgate: a password no account has")


def check_strength(password: str, *, name: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            f"a password needs {MIN_LENGTH} to {MAX_LENGTH} characters; a few unrelated words "
            "make a good one"
        )
    if name and name.lower() in password.lower():
        raise InvalidInput("a password must not contain the user's name")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash, does the same work and fails."""
    try:
        return _HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
