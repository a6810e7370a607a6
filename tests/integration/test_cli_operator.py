"""The operator at the CLI: the quickstart run again still lets them in and keeps what it made,
every change made here is in the audit log as `cli:<os user>` (failed ones too), and the hints
name every step a consumer needs. The CLI in process, on a home of its own."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.access.audit import local_actor
from mlgate.access.model import AuditQuery
from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.cli.serving import runnable
from mlgate.sources import demo
from tests.conftest import make_services

pytestmark = pytest.mark.in_process  # CliRunner over SQLite in a temporary home: the fast tier
runner = CliRunner()


def run(services: Services, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), obj=services, input=stdin)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A home the quickstart finished: its data, source and churn model made first by the
    operator (a small tree, no report: seconds, where the quickstart's own training takes a
    minute here), which the quickstart keeps; then its admin, consumer, plan and key."""
    services = make_services(tmp_path_factory.mktemp("operator") / "home")
    database = services.settings.home / "demo" / "churn.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=300))
    for step in (
        ("sources", "add", "demo", f"sqlite:///{database}"),
        ("train", "churn", "--source", "demo", "--table", demo.TABLE, "--target", demo.TARGET,
         "--drop", demo.ID_COLUMN, "--algorithm", "decision_tree", "--no-report"),
        ("quickstart", "--no-serve"),
    ):  # fmt: skip
        code, out = run(services, *step)
        assert code == 0, out
    assert "admin user admin, password" in out
    yield services
    services.close()


def _events(services: Services, **query: str) -> list[tuple[str, str, str, str]]:
    with services.uow() as uow:
        found = uow.audit.query(AuditQuery(**query))  # type: ignore[arg-type]
    return [(e.actor, e.action, e.target, e.result) for e in reversed(found)]


def test_the_quickstarts_changes_are_audited_as_the_operator(home: Services) -> None:
    me = local_actor()
    assert me.startswith("cli:") and me != "cli:"
    assert _events(home)[:8] == [
        (me, "sources.add", "demo", "ok"),
        (me, "training.train", "churn", "ok"),  # the version's registration is part of it
        # the quickstart's own (its training, when it trains, is the same training.train)
        (me, "access.create_user", "admin", "ok"),
        (me, "access.create_consumer", "demo-customer", "ok"),
        (me, "plans.create_plan", "starter", "ok"),
        (me, "plans.subscribe", "demo-customer to starter", "ok"),
        (me, "access.add_grant", "churn to consumer:demo-customer as consumer", "ok"),
        (me, "access.create_key", "consumer:demo-customer/quickstart", "ok"),
    ]


def test_a_quickstart_run_again_says_how_to_get_in_and_keeps_what_is_there(
    home: Services,
) -> None:
    with home.uow() as uow:
        before = len(uow.audit.query(AuditQuery()))
    code, out = run(home, "quickstart", "--no-serve")
    assert code == 0, out
    me = runnable()
    flat = " ".join(out.split())  # rich wraps long lines
    assert "password (shown once" not in flat  # the admin is not made again
    assert "http://127.0.0.1:8000/ui/login" in flat
    assert f"`{me} users password admin --generate` sets a new one" in flat
    assert "1. demo data: kept" in flat and "2. source: demo, kept" in flat
    assert "3. model churn: kept" in flat and "training churn" not in flat
    assert len(list((home.settings.home / "artifacts" / "churn").glob("*.skops"))) == 1
    assert re.search(r"mlg_[0-9a-f]{12}_\S{20,}", out)  # a new key: the old token is unknown
    assert f"Start the server with `{me} serve --port 8000`" in flat
    with home.uow() as uow:
        made = uow.audit.query(AuditQuery())[: len(uow.audit.query(AuditQuery())) - before]
    assert [(e.action, e.result) for e in made] == [("access.create_key", "ok")]


def test_the_closing_hint_is_a_command_this_shell_can_run(tmp_path: Path) -> None:
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    script = venv_bin / "mlgate"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    elsewhere = tmp_path / "usr-bin"
    elsewhere.mkdir()
    # Not on PATH (no activated environment): the path it was started by.
    assert runnable(".venv/bin/mlgate", path=str(elsewhere)) == ".venv/bin/mlgate"
    # On PATH, the very same program: its name.
    assert runnable(str(script), path=str(venv_bin)) == "mlgate"
    assert runnable("mlgate", path=str(venv_bin)) == "mlgate"
    # Another mlgate first on PATH: this one's path, not the other's name.
    other = elsewhere / "mlgate"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert runnable(str(script), path=f"{elsewhere}{os.pathsep}{venv_bin}") == str(script)
    # `python -m mlgate`: that, with this interpreter.
    assert runnable(str(Path("src/mlgate/__main__.py")), executable="/x/python") == (
        "/x/python -m mlgate"
    )
    assert shutil.which(runnable().split()[0]) or Path(runnable().split()[0]).exists()
    assert sys.executable


def test_a_failed_password_change_at_the_cli_is_audited(home: Services) -> None:
    code, out = run(home, "users", "password", "admin", "--password-stdin", stdin="123\n")
    assert code == 1 and "Error:" in out
    code, out = run(home, "users", "password", "nobody", "--password-stdin", stdin="x" * 20)
    assert code == 1
    assert _events(home, action="access.set_password")[-2:] == [
        (local_actor(), "access.set_password", "admin", "failed"),
        (local_actor(), "access.set_password", "nobody", "failed"),
    ]
    # Refused before the use case (no terminal to ask twice): the command's failed attempt.
    code, out = run(home, "users", "password", "admin")
    assert code == 1 and "no terminal" in out
    assert _events(home, action="cli.users.password")[-1] == (
        local_actor(),
        "cli.users.password",
        "admin",
        "failed",
    )


def test_the_cli_records_each_change_and_each_refusal_of_one(home: Services) -> None:
    me = local_actor()
    steps = [
        ("consumers", "create", "acme"),
        ("plans", "create", "gold", "--requests-per-month", "1000"),
        ("consumers", "subscribe", "acme", "gold"),
        ("grants", "add", "churn", "consumer", "--consumer", "acme"),
        ("keys", "create", "--consumer", "acme", "--name", "acme-key"),
        ("models", "promote", "churn", "9"),  # no such version: refused before promote runs
    ]
    with home.uow() as uow:
        before = len(uow.audit.query(AuditQuery()))
    for step in steps:
        run(home, *step)
    with home.uow() as uow:
        made = uow.audit.query(AuditQuery())
    assert [(e.actor, e.action, e.target, e.result) for e in made[: len(made) - before]][::-1] == [
        (me, "access.create_consumer", "acme", "ok"),
        (me, "plans.create_plan", "gold", "ok"),
        (me, "plans.subscribe", "acme to gold", "ok"),
        (me, "access.add_grant", "churn to consumer:acme as consumer", "ok"),
        (me, "access.create_key", "consumer:acme/acme-key", "ok"),
        (me, "cli.models.promote", "churn@9", "failed"),
    ]
    assert all(e.address == "local" for e in made[: len(made) - before])


def test_each_hint_names_what_a_consumer_still_lacks_subscribe_included(home: Services) -> None:
    code, out = run(home, "consumers", "create", "beta")
    flat = " ".join(out.split())
    assert code == 0
    for step in (
        "`mlgate consumers subscribe beta PLAN`",
        "`mlgate grants add --consumer beta MODEL consumer`",
        "`mlgate keys create --consumer beta --name NAME`",
    ):
        assert step in flat, step
    # Followed one by one, each hint names what is still missing, and then nothing.
    code, out = run(home, "consumers", "subscribe", "beta", "starter")
    flat = " ".join(out.split())
    assert "subscribe" not in flat.split("Next:")[1] and "grants add" in flat
    code, out = run(home, "grants", "add", "churn", "consumer", "--consumer", "beta")
    flat = " ".join(out.split())
    assert "grants add" not in flat.split("Next:")[1] and "keys create" in flat
    code, out = run(home, "keys", "create", "--consumer", "beta", "--name", "b")
    assert "beta has a plan, a grant and a key" in " ".join(out.split())
    code, out = run(home, "plans", "create", "silver", "--requests-per-month", "10")
    assert "`mlgate consumers subscribe CONSUMER silver`" in " ".join(out.split())
