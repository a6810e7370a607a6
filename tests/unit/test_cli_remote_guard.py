"""A command that works on this machine's home refuses `--url` instead of quietly answering
from the local home (found trying `mlgate --url … models card` as a new user would: it printed
the local card, or "no model churn" from an empty home)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.cli.main import app

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    "command",
    [["models", "list"], ["models", "card", "churn@1"], ["models", "verify", "churn@1"],
     ["doctor"], ["plans", "list"]],  # fmt: skip
)
def test_a_local_command_refuses_url_and_names_what_does_work_over_it(
    command: list[str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app, ["--url", "http://127.0.0.1:9", *command], env={"MLGATE_HOME": str(home)}
    )
    flat = " ".join(result.output.split())
    assert result.exit_code != 0, flat
    assert "works on this machine's home" in flat and "http://127.0.0.1:9/docs" in flat
    assert "Over --url: users, consumers, keys" in flat
    assert not home.exists()  # nothing was made in the local home either
