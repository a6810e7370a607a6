"""API key tokens and their keyed digests."""

from __future__ import annotations

import re
from pathlib import Path

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


# -- the checksummed format -----------------------------------------------------------------


def test_a_new_key_carries_a_checksum_and_matches_the_scanners_pattern() -> None:
    token = keys.new_key()
    raw = str(token)
    assert keys.shape_of(raw) == ("checksummed", token)
    assert re.fullmatch(keys.KEY_PATTERN, raw)
    assert not re.search(keys.LEGACY_KEY_PATTERN, raw)
    assert re.findall(keys.KEY_PATTERN, f"export MLGATE_KEY={raw}\n") == [raw]
    assert len(token.secret) == 42 and len(raw) == 59


def test_every_single_character_typo_fails_the_checksum() -> None:
    raw = str(keys.new_key())
    head = len("mlg_0123456789ab_")
    for at in range(head, len(raw)):
        for c in "0aZ":
            if raw[at] != c:
                typo = raw[:at] + c + raw[at + 1 :]
                assert keys.shape_of(typo)[0] == "bad_checksum", (at, c)
    swapped = raw[:head] + raw[head + 1] + raw[head] + raw[head + 2 :]
    assert raw[head] == raw[head + 1] or keys.shape_of(swapped)[0] == "bad_checksum"


def test_a_truncated_or_lengthened_key_is_refused_on_its_text() -> None:
    raw = str(keys.new_key())
    for cut in range(1, 42):
        assert keys.shape_of(raw[:-cut])[0] == "bad_checksum", cut
    assert keys.shape_of(raw + "xy")[0] == "malformed"
    assert keys.shape_of(raw[:-1] + "!")[0] == "malformed"


def test_a_changed_id_fails_the_checksum_too() -> None:
    token = keys.new_key()
    other_id = "mlg_" + ("0" if token.prefix[4] != "0" else "1") + token.prefix[5:]
    assert keys.shape_of(f"{other_id}_{token.secret}")[0] == "bad_checksum"


def test_keys_made_before_the_checksum_still_parse_as_legacy() -> None:
    old = keys.new_token()  # secrets.token_urlsafe(32), as keys were made before
    raw = f"mlg_0123456789ab_{old.secret}"
    assert keys.shape_of(raw) == ("legacy", keys.Token("mlg_0123456789ab", old.secret))
    assert re.search(keys.LEGACY_KEY_PATTERN, raw)


def test_a_rotated_secret_keeps_the_id() -> None:
    token = keys.new_key()
    again = keys.with_new_secret(token.prefix)
    assert again.prefix == token.prefix and again.secret != token.secret
    assert keys.shape_of(str(again))[0] == "checksummed"


def test_keys_are_found_in_a_diff_and_never_shown_whole() -> None:
    new, old = str(keys.new_key()), "mlg_0123456789ab_" + "a-b_" * 10 + "xyz"
    diff = f"+MLGATE_KEY={new}\n-OLD='{old}'\n context mlg_ and mlg_<id>_<secret>\n+{new[:-4]}\n"
    found = keys.find_keys(diff)
    assert [(line, keys.shape_of(raw)[0]) for line, raw in found] == [
        (1, "checksummed"),
        (2, "legacy"),
        (4, "bad_checksum"),
    ]
    for _, raw in found:
        shown = keys.masked(raw)
        assert shown.startswith(raw[:16]) and raw[17:25] not in shown


def test_the_guide_gives_scanners_the_pattern_keys_have() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "concepts" / "access.md").read_text()
    assert f"regex = '''{keys.KEY_PATTERN}'''" in guide
