"""Annotating, deleting, and checking the registry with `mlgate doctor`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.errors import Conflict
from mlgate.registry import aliases as lifecycle
from mlgate.registry.doctor import check_registry
from mlgate.registry.model import ModelVersion
from mlgate.registry.service import resolve_version
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to


@pytest.fixture
def two_versions(services: Services, tmp_path: Path) -> Services:
    demo.churn_frame(n_rows=300).to_csv(tmp_path / "c.csv", index=False)
    add_source_to(services, "c", str(tmp_path / "c.csv"), cwd=tmp_path)
    for _ in range(2):
        train(services)
    return services


def train(services: Services) -> ModelVersion:
    spec = TrainSpec(
        "m",
        "c",
        demo.TARGET,
        "logistic_regression",
        table="c",
        drop=(demo.ID_COLUMN,),
        report=False,
    )
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version


def test_descriptions_and_tags(two_versions: Services) -> None:
    s = two_versions
    lifecycle.annotate(
        s.uow(), "m", None, description="churn for EU", tags={"team": "growth", "tier": "1"}
    )
    lifecycle.annotate(s.uow(), "m", 2, description="tuned", tags={"ticket": "ML-42"})
    lifecycle.annotate(s.uow(), "m", None, tags={"tier": ""})  # removes it
    with s.uow() as uow:
        model = uow.models.get("m")
        assert model is not None and model.description == "churn for EU"
        assert model.tags == {"team": "growth"}
    version = resolve_version(s.uow(), "m", 2)
    assert version.description == "tuned" and version.tags == {"ticket": "ML-42"}


def test_delete_is_refused_while_aliased_and_numbers_are_never_reused(
    two_versions: Services,
) -> None:
    s = two_versions
    lifecycle.promote(s.uow(), "m", 1, "production", actor="t", now=s.clock())
    with pytest.raises(Conflict, match="target of production"):
        lifecycle.delete_version(s.uow(), s.artifacts, "m", 1)
    version = resolve_version(s.uow(), "m", 2)
    lifecycle.delete_version(s.uow(), s.artifacts, "m", 2)
    assert all(not (s.settings.artifact_dir / key).exists() for key in lifecycle.files_of(version))
    assert train(s).number == 3
    assert check_registry(s.uow(), s.artifacts)[1] == []


def test_doctor_finds_what_is_wrong_and_says_how_to_fix_it(two_versions: Services) -> None:
    s = two_versions
    runner = CliRunner()
    ok = runner.invoke(app, ["doctor"], obj=s)
    assert ok.exit_code == 0 and "2 versions" in ok.output

    v1, v2 = resolve_version(s.uow(), "m", 1), resolve_version(s.uow(), "m", 2)
    (s.settings.artifact_dir / v1.artifact.key).unlink()
    snapshot = s.settings.artifact_dir / (v2.report or {})["attachments"]["snapshot.parquet"]["key"]
    data = bytearray(snapshot.read_bytes())
    data[10] ^= 1
    snapshot.write_bytes(bytes(data))
    (s.settings.artifact_dir / "m" / "stray.skops").write_bytes(b"left behind")

    _, findings = check_registry(s.uow(), s.artifacts)
    problems = " | ".join(f.problem for f in findings)
    assert "m@v1" in problems and "is missing" in problems
    assert "m@v2" in problems and "does not match its sha256" in problems
    assert "m/stray.skops belongs to no version" in problems
    assert all(f.fix for f in findings)

    bad = runner.invoke(app, ["doctor"], obj=s)
    assert bad.exit_code == 1 and "fix:" in bad.output
    fixed = runner.invoke(app, ["doctor", "--fix"], obj=s)
    assert "removed m/stray.skops" in fixed.output
    assert not (s.settings.artifact_dir / "m" / "stray.skops").exists()
    from mlgate.access.model import AuditQuery

    (removal,) = s.access.audit_log(AuditQuery(action="registry.remove_orphans"))
    assert removal.result == "ok" and removal.detail["keys"] == ["m/stray.skops"]
    assert removal.actor.startswith("cli:")


def test_a_serving_process_switches_only_to_a_target_it_could_load(two_versions: Services) -> None:
    from mlgate.runtime.watcher import AliasWatcher

    s = two_versions
    watcher = AliasWatcher(s.uow, s.predictors)
    lifecycle.promote(s.uow(), "m", 1, "production", actor="t", now=s.clock())
    watcher.refresh()
    assert watcher.target("m", "production") == 1
    v2 = resolve_version(s.uow(), "m", 2)
    (s.settings.artifact_dir / v2.artifact.key).write_bytes(b"broken")
    lifecycle.promote(s.uow(), "m", 2, "production", actor="t", now=s.clock())
    watcher.refresh()
    assert watcher.target("m", "production") == 1  # v2 failed its checks: v1 keeps serving
    assert watcher.target("m", "staging") is None
