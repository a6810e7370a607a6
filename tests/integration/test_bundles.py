"""Export a version as a bundle, import it into another mlgate; a tampered bundle is refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.errors import InvalidInput
from mlgate.registry.bundles import export_bundle, import_bundle
from mlgate.registry.service import read_attachment, resolve_version
from mlgate.schema import rows_to_frame
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services


@pytest.fixture
def exported(services: Services, tmp_path: Path) -> bytes:
    demo.churn_frame(n_rows=300).to_csv(tmp_path / "c.csv", index=False)
    add_source_to(services, "c", str(tmp_path / "c.csv"), cwd=tmp_path)
    spec = TrainSpec("churn", "c", demo.TARGET, "lightgbm", table="c", drop=(demo.ID_COLUMN,))
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    return export_bundle(services.uow(), services.artifacts, "churn", 1, now=services.clock())


def rows() -> list[dict[str, object]]:
    frame = demo.churn_frame(n_rows=20, seed=5).drop(columns=[demo.ID_COLUMN, demo.TARGET])
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[return-value]


def test_a_bundle_moves_a_version_to_another_mlgate(
    services: Services, exported: bytes, tmp_path: Path
) -> None:
    other = make_services(tmp_path / "other-home")
    try:
        imported = import_bundle(
            other.uow(), other.artifacts, exported, model_name=None, now=other.clock()
        )
        assert imported.ref == "churn@v1"
        original = resolve_version(services.uow(), "churn", 1)
        assert imported.metrics == original.metrics and imported.lineage == original.lineage
        assert (imported.report or {})["imported_from"]["version"] == 1
        frame = rows_to_frame(rows(), original.columns, max_rows=100)
        assert other.predictors.get(imported).score(frame) == services.predictors.get(
            original
        ).score(frame)
        page = read_attachment(other.uow(), other.artifacts, imported, "report.html")
        assert b"learning curve" in page
        again = import_bundle(
            other.uow(), other.artifacts, exported, model_name="churn-eu", now=other.clock()
        )
        assert again.ref == "churn-eu@v1"
    finally:
        other.close()


def test_a_tampered_bundle_is_refused_and_nothing_is_written(
    exported: bytes, tmp_path: Path
) -> None:
    source = zipfile.ZipFile(io.BytesIO(exported))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            content = source.read(item)
            if item == "files/model":
                content = content[:-1] + bytes([content[-1] ^ 1])
            target.writestr(item, content)
    other = make_services(tmp_path / "other-home")
    try:
        with pytest.raises(InvalidInput, match="model do\\(es\\) not match the sha256"):
            import_bundle(
                other.uow(), other.artifacts, out.getvalue(), model_name=None, now=other.clock()
            )
        with other.uow() as uow:
            assert uow.models.all() == []
        assert other.artifacts.list_keys() == []
    finally:
        other.close()


def test_export_and_import_from_the_command_line(
    services: Services, exported: bytes, tmp_path: Path
) -> None:
    runner = CliRunner()
    target = tmp_path / "b.zip"
    result = runner.invoke(
        app, ["models", "export", "churn@1", "-o", str(target), "--no-snapshot"], obj=services
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(target) as bundle:
        assert "files/snapshot.parquet" not in bundle.namelist()
    result = runner.invoke(app, ["models", "import", str(target), "--as", "copy"], obj=services)
    assert result.exit_code == 0 and "imported as copy@v1" in result.output
    missing = runner.invoke(app, ["models", "import", str(tmp_path / "nope.zip")], obj=services)
    assert missing.exit_code == 1 and "cannot read" in missing.output
