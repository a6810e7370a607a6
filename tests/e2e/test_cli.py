"""The `mlgate` command, as a user runs it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.access.audit import local_actor
from mlgate.access.model import AuditQuery
from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.sources import demo
from tests.conftest import make_services
from tests.e2e.helpers import TOKEN, env_for
from tests.secrets_watch import remember

runner = CliRunner()


@pytest.fixture
def cli_services(tmp_path: Path) -> Iterator[Services]:
    services = make_services(tmp_path / "home")
    yield services
    services.close()


def run(services: Services, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), obj=services)
    return result.exit_code, result.output


def test_quickstart_runs_from_an_empty_home(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    command = shutil.which("mlgate", path=str(Path(sys.executable).parent))
    assert command is not None, "the console script `mlgate` is not installed"
    result = subprocess.run(
        [command, "quickstart", "--no-serve"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (home / "mlgate.db").exists() and (home / "secret.key").exists()
    assert TOKEN.search(result.stdout)
    assert "curl -s http://127.0.0.1:8000/v1/models/churn/predict" in result.stdout
    assert len(list((home / "artifacts" / "churn").glob("*.skops"))) == 1
    assert oct((home / "secret.key").stat().st_mode & 0o777) == "0o600"
    # The closing hint is a command this shell can run (the path, where mlgate is not on PATH).
    hint = re.search(r"Start the server with `(.+) serve --port 8000`", result.stdout)
    assert hint is not None, result.stdout
    program = shlex.split(hint.group(1))[0]
    assert shutil.which(program, path=env_for(home).get("PATH")) or Path(program).is_file()
    # Its changes are in the audit log, the operator as their actor.
    services = make_services(home)
    try:
        with services.uow() as uow:
            events = uow.audit.query(AuditQuery())
    finally:
        services.close()
    assert [e.action for e in reversed(events)] == [
        "sources.add", "training.train", "access.create_user", "access.create_consumer",
        "plans.create_plan", "plans.subscribe", "access.add_grant", "access.create_key",
    ]  # fmt: skip
    assert {e.actor for e in events} == {local_actor()}


def test_the_tour_sources_train_models_keys(cli_services: Services, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    demo.write_sqlite(db, demo.churn_frame(n_rows=300))
    code, out = run(cli_services, "sources", "add", "shop", f"sqlite:///{db}")
    assert code == 0 and "customers" in out
    code, out = run(cli_services, "sources", "test", "shop")
    assert code == 0 and "reachable" in out
    code, out = run(cli_services, "sources", "show", "shop", "--table", "customers", "--rows", "2")
    assert code == 0 and "tenure_months" in out and "number" in out

    args = ["train", "churn", "--source", "shop", "--table", "customers", "--target", "churned"]
    code, out = run(cli_services, *args, "--drop", "customer_id")
    assert code == 0, out
    assert "churn v1" in out and "accuracy" in out and "95% interval" in out
    code, out = run(cli_services, *args, "--drop", "customer_id")
    assert "churn v2" in out

    code, out = run(cli_services, "models", "list")
    assert code == 0 and "churn" in out and "2" in out
    code, out = run(cli_services, "models", "show", "churn")
    assert code == 0 and "accuracy" in out and "skops sha256" in out
    assert "trained by cli:" in out

    code, out = run(cli_services, "keys", "create", "--name", "billing")
    assert code == 1 and "--user NAME or --consumer NAME" in out
    code, out = run(cli_services, "consumers", "create", "acme")
    assert code == 0, out
    code, out = run(cli_services, "keys", "create", "--name", "billing", "--consumer", "acme")
    token = TOKEN.search(out)
    assert code == 0 and token
    code, out = run(cli_services, "keys", "list")
    assert token.group(0) not in out and "billing" in out and "active" in out
    code, out = run(cli_services, "keys", "revoke", "billing")
    assert code == 0 and "Revoked" in out
    code, out = run(cli_services, "keys", "list")
    assert "revoked" in out


def test_errors_are_one_line_with_exit_code_1(cli_services: Services) -> None:
    code, out = run(cli_services, "train", "m", "--source", "nope", "--table", "t", "--target", "y")
    assert code == 1
    assert out.strip() == (
        "Error: no source named 'nope'; add it first (`mlgate sources add`, or Sources in the "
        "dashboard)"
    )
    code, out = run(cli_services, "models", "show", "ghost")
    assert code == 1 and "no model named 'ghost'" in out and "Traceback" not in out


def test_passwords_are_never_printed(cli_services: Services, postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{remember('hunter2-secret')}@")
    code, out = run(cli_services, "sources", "add", "pg", url)
    assert code == 0 and "***" in out
    code, listing = run(cli_services, "sources", "list")
    code2, failure = run(
        cli_services, "sources", "add", "bad", "postgresql+psycopg://x:hunter2-secret@127.0.0.1:1/x"
    )
    assert code2 == 1
    for text in (out, listing, failure):
        assert "hunter2" not in text


def test_local_changes_are_in_the_audit_log(cli_services: Services, tmp_path: Path) -> None:
    database = tmp_path / "churn.db"
    demo.write_sqlite(database, demo.churn_frame(n_rows=300))
    run(cli_services, "sources", "add", "demo", f"sqlite:///{database}")
    args = ("train", "churn", "--source", "demo", "--table", demo.TABLE, "--target", demo.TARGET)
    run(cli_services, *args, "--drop", "customer_id", "--algorithm", "decision_tree")
    run(cli_services, "models", "promote", "churn", "1")
    code, _ = run(cli_services, "models", "promote", "churn", "7")
    assert code == 1
    with cli_services.uow() as uow:
        events = uow.audit.query(AuditQuery())
    assert [(e.action, e.target, e.result, e.address) for e in events] == [
        ("cli.models.promote", "churn@7", "failed", "local"),  # refused before promote ran
        ("models.promote", "churn@1", "ok", "local"),
        ("training.train", "churn", "ok", "local"),  # its version's registration is part of it
        ("sources.add", "demo", "ok", "local"),
    ]
    assert {e.actor for e in events} == {local_actor()}
    code, out = run(cli_services, "audit", "--result", "failed")
    assert code == 0 and "churn@7" in out and "churn@1" not in out
