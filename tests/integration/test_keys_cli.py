"""`mlgate keys rotate`, `keys list` and `keys check` at the operator's CLI, in process over
SQLite in a home of their own; no secret is ever printed by check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from mlgate.access import accounts, keys
from mlgate.bootstrap import Services
from mlgate.cli import context as cli_context
from mlgate.cli.main import app
from tests.conftest import make_services
from tests.e2e.helpers import TOKEN

pytestmark = pytest.mark.in_process  # CliRunner over SQLite in a temporary home: the fast tier
runner = CliRunner(env={"COLUMNS": "250"})


def run(services: Services, *args: str, stdin: str | None = None) -> tuple[int, str]:
    # The CLI's console reads COLUMNS once, when it is made (maybe by an earlier test): wide
    # enough here that no table cell is cut.
    with mock.patch.object(cli_context.console, "_width", 250):
        result = runner.invoke(app, list(args), obj=services, input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = make_services(tmp_path / "home")
    accounts.create_consumer(made.uow(), by=None, name="acme", description="", now=made.clock())
    yield made
    made.close()


def token_in(out: str) -> str:
    found = TOKEN.search(out)
    assert found, out
    return found.group(0)


def test_a_key_rotates_and_both_secrets_are_listed_with_their_end(services: Services) -> None:
    code, out = run(services, "keys", "create", "--consumer", "acme", "--name", "app", "-q")
    assert code == 0, out
    old = out.strip()
    code, out = run(services, "keys", "rotate", "app", "--overlap", "31d")
    assert code == 1 and "0 to 30 days" in out
    code, out = run(services, "keys", "rotate", "app", "--overlap", "soon")
    assert code == 1 and "30m, 24h or 7d" in out
    code, out = run(services, "keys", "rotate", "app", "--overlap", "24h")
    assert code == 0, out
    new = token_in(out)
    assert new[:16] == old[:16] and new != old and "old secret works until" in out
    code, out = run(services, "keys", "list")
    assert code == 0 and "rotating" in out and "old secret until" in out


def test_check_finds_keys_says_which_work_and_never_prints_a_secret(
    services: Services, tmp_path: Path
) -> None:
    _, out = run(services, "keys", "create", "--consumer", "acme", "--name", "app", "-q")
    old = out.strip()
    _, out = run(services, "keys", "rotate", "app", "--overlap", "1h", "-q")
    new = out.strip()
    _, out = run(services, "keys", "create", "--consumer", "acme", "--name", "gone", "-q")
    gone = out.strip()
    run(services, "keys", "revoke", "gone")
    typo = new[:-1] + ("A" if new[-1] != "A" else "B")
    diff = tmp_path / "change.diff"
    diff.write_text(
        f"+OLD={old}\n+NEW={new}\n context\n-REVOKED='{gone}'\n+TYPO={typo}\n"
        f"+FAKE={keys.with_new_secret('mlg_0123456789ab')}\n"  # well-formed, no such key
    )
    code, out = run(services, "keys", "check", str(diff))
    assert code == 1, out
    lines = out.splitlines()
    assert "line 1:" in lines[0] and "live (old secret) key 'app' of consumer:acme" in lines[0]
    assert "line 2:" in lines[1] and "well-formed, live key 'app'" in lines[1]
    assert "line 4:" in lines[2] and "revoked key 'gone'" in lines[2]
    assert "line 5:" in lines[3] and "checksum does not match, malformed" in lines[3]
    assert "line 6:" in lines[4] and "unknown" in lines[4]
    assert "2 working key(s) found" in out
    for secret in (old, new, gone, typo):
        assert secret[17:] not in out
    code, out = run(services, "keys", "check", "-", stdin=f"MLGATE_KEY={gone}\n")
    assert code == 0 and "revoked" in out
    code, out = run(services, "keys", "check", "--offline", new)
    assert code == 0 and "well-formed" in out and "live" not in out
    code, out = run(services, "keys", "check", "nothing here")
    assert code == 0 and "No mlgate keys found" in out


def test_a_missing_file_and_a_far_lifetime_are_refused_with_a_reason(
    services: Services, tmp_path: Path
) -> None:
    # found trying keys as a new user would: a mistyped file name read as text passed the
    # hook ("No mlgate keys found", exit 0); 99999999999999999999d was a traceback
    code, out = run(services, "keys", "check", str(tmp_path / "leaked.evn"))
    assert code == 1 and "is not a file" in out and "Traceback" not in out
    code, out = run(services, "keys", "create", "--consumer", "acme", "--name", "app", "-q")
    assert code == 0, out
    for far in ("99999999999999999999d", "9999999d"):
        code, out = run(services, "keys", "rotate", "app", "--overlap", far)
        assert code == 1 and "0 to 30 days" in out, out
        code, out = run(services, "keys", "create", "--consumer", "acme", "--name", "x",
                        "--expires", far)  # fmt: skip
        assert code == 1 and "past the year 9999" in out, out


def test_a_check_looks_up_a_bounded_number_of_keys_and_says_how_to_check_more(
    services: Services, tmp_path: Path
) -> None:
    # found by the fresh-eye review: POST /v1/keys/check read the database once per key, 12.8 s
    # for a 4 MB body of 70,000 keys
    from mlgate.access import keys
    from mlgate.access.service import MAX_KEYS_LOOKED_UP

    many = tmp_path / "dump.txt"
    many.write_text("\n".join(str(keys.new_key()) for _ in range(MAX_KEYS_LOOKED_UP + 1)))
    code, out = run(services, "keys", "check", str(many))
    flat = " ".join(out.split())
    assert code != 0 and f"a check looks up at most {MAX_KEYS_LOOKED_UP:,}" in flat, out
    assert "--offline" in flat and "Traceback" not in out
    code, out = run(services, "keys", "check", "--offline", str(many))
    assert code == 0 and out.count("mlg_") == MAX_KEYS_LOOKED_UP + 1
