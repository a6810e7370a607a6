"""API key tokens and their keyed digests."""

from __future__ import annotations

from mlgate.access import keys


def test_tokens_carry_a_public_prefix_and_at_least_128_secret_bits() -> None:
    token = keys.new_token()
    assert str(token).startswith(token.prefix + "_")
    assert len(token.secret) * 6 >= 256  # url-safe base64: 6 bits a character
    assert keys.parse_token(str(token)) == token


def test_two_tokens_differ() -> None:
    assert keys.new_token() != keys.new_token()


def test_the_digest_depends_on_the_server_secret() -> None:
    token = keys.new_token()
    stored = keys.digest(token, b"server-secret-1")
    assert keys.matches(token, stored, b"server-secret-1")
    assert not keys.matches(token, stored, b"server-secret-2")
    assert token.secret not in stored


def test_malformed_tokens_are_not_parsed() -> None:
    for raw in [
        "",
        "mlg_",
        "abc",
        "mlg_zzzzzzzzzzzz_secret",
        "mlg_0123456789ab",
        "xyz_0123456789ab_s",
    ]:
        assert keys.parse_token(raw) is None


def test_the_secret_never_shows_in_repr() -> None:
    token = keys.new_token()
    assert token.secret not in repr(token)
