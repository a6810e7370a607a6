"""`mlgate predict`: whole tables scored in chunks, from PostgreSQL and from files, into Parquet,
CSV or a new table; the same predictions as scoring all rows at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.sources import demo
from tests.conftest import add_source_to

runner = CliRunner()


def run(services: Services, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), obj=services)
    return result.exit_code, result.output


@pytest.fixture
def trained(services: Services, tmp_path: Path) -> pd.DataFrame:
    frame = demo.churn_frame(n_rows=1_000, seed=3)
    database = tmp_path / "train.db"
    demo.write_sqlite(database, frame)
    add_source_to(services, "train", f"sqlite:///{database}", cwd=tmp_path)
    code, out = run(
        services, "train", "churn", "--source", "train", "--table", demo.TABLE,
        "--target", demo.TARGET, "--drop", demo.ID_COLUMN, "--algorithm", "logistic_regression",
    )  # fmt: skip
    assert code == 0, out
    return frame


def expected(services: Services, rows: pd.DataFrame) -> pd.DataFrame:
    version = resolve_version(services.uow(), "churn", None)
    scores = services.predictors.get(version).score(conform(rows, version.columns))
    probabilities = pd.DataFrame(scores.probabilities, columns=["probability_0", "probability_1"])
    return pd.DataFrame({"prediction": scores.predictions}).join(probabilities)


def test_a_postgres_table_streams_into_parquet_and_into_a_table(
    services: Services, trained: pd.DataFrame, postgres_url: str, tmp_path: Path
) -> None:
    rows = demo.churn_frame(n_rows=2_345, seed=11)
    engine = sa.create_engine(postgres_url)
    rows.to_sql("to_score", engine, index=False)
    add_source_to(services, "warehouse", postgres_url, cwd=tmp_path)
    out = tmp_path / "scored.parquet"
    code, text = run(
        services, "predict", "churn", "--source", "warehouse", "--table", "to_score",
        "--output", str(out), "--chunk-rows", "500",
    )  # fmt: skip
    assert code == 0, text
    assert "Scored 2,345 rows with churn@v1" in text and "2345/2345" in text
    scored = pd.read_parquet(out)
    assert list(scored[demo.ID_COLUMN]) == list(rows[demo.ID_COLUMN])  # every row, in order
    want = expected(services, rows)
    assert scored["prediction"].tolist() == want["prediction"].tolist()
    pd.testing.assert_frame_equal(
        scored[["probability_0", "probability_1"]], want[["probability_0", "probability_1"]],
        rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    code, text = run(
        services, "predict", "churn@1", "--source", "warehouse",
        "--query", "SELECT * FROM to_score WHERE tenure_months > 12", "--into-table", "scored",
    )  # fmt: skip
    assert code == 0, text
    back = pd.read_sql("SELECT * FROM scored", engine)
    assert len(back) == int((rows["tenure_months"] > 12).sum()) and "prediction" in back
    code, text = run(
        services, "predict", "churn", "--source", "warehouse", "--table", "to_score",
        "--into-table", "scored",
    )  # fmt: skip
    assert code == 1 and "already has a table 'scored'" in text
    engine.dispose()


def test_a_sqlite_query_scores_into_a_table_of_the_same_file(
    services: Services, trained: pd.DataFrame, tmp_path: Path
) -> None:
    """SQLite lets no connection write while another reads the file: the chunks read through a
    cursor still open used to meet "database is locked" at the first write."""
    code, text = run(
        services, "predict", "churn", "--source", "train",
        "--query", f"SELECT * FROM {demo.TABLE} WHERE tenure_months > 12",
        "--into-table", "scored", "--chunk-rows", "100",
    )  # fmt: skip
    assert code == 0, text
    wanted = trained[trained["tenure_months"] > 12].reset_index(drop=True)
    assert f"Scored {len(wanted):,} rows with churn@v1 into table scored" in text
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'train.db'}")
    back = pd.read_sql(f"SELECT * FROM scored ORDER BY {demo.ID_COLUMN}", engine)
    engine.dispose()
    assert list(back[demo.ID_COLUMN]) == sorted(wanted[demo.ID_COLUMN])
    ordered = wanted.sort_values(demo.ID_COLUMN).reset_index(drop=True)
    assert back["prediction"].tolist() == expected(services, ordered)["prediction"].tolist()


def test_a_csv_file_scores_into_csv(
    services: Services, trained: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    rows = demo.churn_frame(n_rows=321, seed=5)
    rows.to_csv(folder / "batch.csv", index=False)
    add_source_to(services, "files", str(folder), cwd=tmp_path)
    out = tmp_path / "scored.csv"
    code, text = run(
        services, "predict", "churn", "--source", "files", "--table", "batch",
        "--output", str(out), "--chunk-rows", "100",
    )  # fmt: skip
    assert code == 0, text
    scored = pd.read_csv(out)
    assert len(scored) == 321
    assert scored["prediction"].tolist() == expected(services, rows)["prediction"].tolist()


def test_bad_requests_write_nothing(
    services: Services, trained: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "none.parquet"
    cases = [
        (["--table", demo.TABLE], "--output FILE or --into-table NAME"),
        (["--table", demo.TABLE, "--output", str(tmp_path / "x.json")], ".parquet or a .csv"),
        (["--output", str(out)], "--table or --query"),
        (["--table", "nope", "--output", str(out)], "no table 'nope'"),
    ]
    for args, words in cases:
        code, text = run(services, "predict", "churn", "--source", "train", *args)
        assert code == 1 and words in text, text
    assert not out.exists() and not list(tmp_path.glob(".*.partial"))
