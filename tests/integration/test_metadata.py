"""The metadata schema: at head after bootstrap, migrated once when replicas start together.
What the repositories do is the contract suite's (tests/contracts/), over every backend."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mlgate.bootstrap import Services
from mlgate.db import migrate


def test_the_schema_is_at_head(any_services: Services) -> None:
    assert migrate.current_revision(any_services.engine) == migrate.head_revision()
    assert any_services.readiness()["status"] == "ready"


def test_the_head_a_start_checks_against_is_the_scripts_head() -> None:
    """Starting processes compare with migrate.HEAD and import no Alembic: it must be true."""
    assert migrate.scripts_head() == migrate.HEAD


def test_replicas_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    """Four processes bootstrap one empty PostgreSQL database at the same moment."""
    import subprocess
    import sys

    script = (
        "import sys; from mlgate.bootstrap import bootstrap; from mlgate.settings import Settings;"
        "s = bootstrap(Settings.from_env({'MLGATE_HOME': sys.argv[1], "
        "'MLGATE_DATABASE_URL': sys.argv[2], 'MLGATE_SECRET_KEY': 'shared'})); s.close()"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / f"h{i}"), postgres_url],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(4)
    ]
    outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in runs]
    assert all(code == 0 for _, code in outcomes), outcomes
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert [v[0] for v in versions] == [migrate.head_revision()]
