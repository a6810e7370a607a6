"""The same rows, held in PostgreSQL, MariaDB, SQLite, CSV and Parquet, train the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput, NotFound, SourceError
from mlgate.sources import demo
from mlgate.sources.service import add_source, describe_table
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to
from tests.secrets_watch import remember

NUMERIC = ["tenure_months", "monthly_charges", "total_charges", "senior_citizen", "support_calls"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return demo.churn_frame(n_rows=600, seed=11)


def sklearn_directly(
    rows: pd.DataFrame, *, target: str, numeric: list[str], estimator: object, stratify: bool
) -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    """What a data scientist would write by hand for these rows: the fitted pipeline and holdout."""
    X = rows[numeric + CATEGORICAL].copy()
    X[CATEGORICAL] = X[CATEGORICAL].astype(object).where(X[CATEGORICAL].notna(), np.nan)
    X[numeric] = X[numeric].astype("float64")
    y = rows[target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=y if stratify else None
    )
    numbers = Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())])
    strings = Pipeline(
        [
            ("i", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("e", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    pre = ColumnTransformer([("n", numbers, numeric), ("c", strings, CATEGORICAL)])
    pipeline = Pipeline([("pre", pre), ("model", estimator)]).fit(X_train, y_train)
    return pipeline, X_test, y_test


def load_into(
    kind: str, rows: pd.DataFrame, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, str | None, str | None]:
    """Put `rows` where `kind` keeps data; returns (url, table, query)."""
    if kind == "csv":
        path = tmp_path / "customers.csv"
        rows.to_csv(path, index=False)
        return str(path), "customers", None
    if kind == "parquet":
        path = tmp_path / "data"
        path.mkdir()
        rows.to_parquet(path / "customers.parquet", index=False)
        return str(path), "customers", None
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'rows.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if kind == "postgresql" else "mariadb_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        rows.to_sql("customers", conn, index=False)
    engine.dispose()
    if kind == "mariadb":  # also exercise --query
        return url, None, "SELECT * FROM customers ORDER BY customer_id"
    return url, "customers", None


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite", "csv", "parquet"])
def test_every_source_gives_the_metrics_of_sklearn_fitted_directly(
    kind: str,
    rows: pd.DataFrame,
    services: Services,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    url, table, query = load_into(kind, rows, tmp_path, request)
    add_source_to(services, "data", url, cwd=tmp_path)

    classifier = train_model(
        services.uow(),
        services.artifacts,
        services.open_source,
        TrainSpec(
            "churn",
            "data",
            "churned",
            "logistic_regression",
            table=table,
            query=query,
            drop=("customer_id",),
        ),
        now=services.clock,
    ).version
    pipeline, X_test, y_test = sklearn_directly(
        rows,
        target="churned",
        numeric=NUMERIC,
        estimator=LogisticRegression(max_iter=1000),
        stratify=True,
    )
    assert classifier.metrics["accuracy"] == pytest.approx(
        accuracy_score(y_test, pipeline.predict(X_test)), abs=1e-6
    )
    assert classifier.metrics["log_loss"] == pytest.approx(
        log_loss(y_test, pipeline.predict_proba(X_test)), abs=1e-6
    )
    assert classifier.lineage.n_rows == len(rows)
    assert classifier.classes == (0, 1)

    regressor = train_model(
        services.uow(),
        services.artifacts,
        services.open_source,
        TrainSpec(
            "charges",
            "data",
            "monthly_charges",
            "linear_regression",
            table=table,
            query=query,
            drop=("customer_id", "churned"),
        ),
        now=services.clock,
    ).version
    pipeline, X_test, y_test = sklearn_directly(
        rows,
        target="monthly_charges",
        numeric=[c for c in NUMERIC if c != "monthly_charges"],
        estimator=LinearRegression(),
        stratify=False,
    )
    predicted = pipeline.predict(X_test)
    assert regressor.metrics["rmse"] == pytest.approx(
        np.sqrt(mean_squared_error(y_test, predicted)), abs=1e-6
    )
    assert regressor.metrics["r2"] == pytest.approx(r2_score(y_test, predicted), abs=1e-6)


def test_the_same_rows_have_the_same_fingerprint_wherever_they_live(
    rows: pd.DataFrame, services: Services, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fingerprints = set()
    for kind in ["postgresql", "sqlite", "csv"]:
        folder = tmp_path / kind
        folder.mkdir()
        url, table, query = load_into(kind, rows, folder, request)
        add_source_to(services, kind, url, cwd=folder)
        version = train_model(
            services.uow(),
            services.artifacts,
            services.open_source,
            TrainSpec(
                "churn",
                kind,
                "churned",
                "logistic_regression",
                table=table,
                query=query,
                drop=("customer_id",),
            ),
            now=services.clock,
        ).version
        fingerprints.add(version.lineage.data_sha256)
    assert len(fingerprints) == 1
    assert version.number == 3


def test_a_password_never_reaches_messages_or_lineage(
    services: Services, postgres_url: str, tmp_path: Path
) -> None:
    secret_url = postgres_url.replace("postgres@", "postgres:hunter2-secret@")
    config, _ = add_source(
        services.uow(),
        services.open_source,
        name="pg",
        url=secret_url,
        cwd=tmp_path,
        now=services.clock(),
    )
    assert "hunter2" not in config.redacted_url and "***" in config.redacted_url
    wrong = f"postgresql+psycopg://nobody:{remember('hunter2-secret')}@127.0.0.1:1/none"
    with pytest.raises(SourceError) as info:
        add_source_to(services, "bad", wrong, cwd=tmp_path)
    assert "hunter2" not in str(info.value)
    with services.uow() as uow:
        assert uow.sources.get("bad") is None  # nothing half-written


def test_describe_infers_types_and_samples_rows(
    rows: pd.DataFrame, services: Services, tmp_path: Path, mariadb_url: str
) -> None:
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        rows.to_sql("customers", conn, index=False)
    engine.dispose()
    add_source_to(services, "maria", mariadb_url, cwd=tmp_path)
    sample = describe_table(
        services.uow(), services.open_source, "maria", table="customers", n_rows=3
    )
    types = {c.name: c.type for c in sample.columns}
    assert types["tenure_months"] == "number" and types["contract"] == "string"
    assert len(sample.rows) == 3 and sample.rows[0]["customer_id"] == rows.customer_id[0]
    with pytest.raises(NotFound, match="no table 'nope'"):
        describe_table(services.uow(), services.open_source, "maria", table="nope")


def test_bad_training_requests_say_what_is_wrong(
    rows: pd.DataFrame, services: Services, tmp_path: Path
) -> None:
    rows.to_csv(tmp_path / "customers.csv", index=False)
    add_source_to(services, "csv", str(tmp_path / "customers.csv"), cwd=tmp_path)

    def train(**changes: object) -> None:
        spec = {
            "model_name": "m",
            "source": "csv",
            "target": "churned",
            "algorithm": "logistic_regression",
            "table": "customers",
            **changes,
        }
        train_model(
            services.uow(),
            services.artifacts,
            services.open_source,
            TrainSpec(**spec),
            now=services.clock,
        )  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="no column 'nope' to predict"):
        train(target="nope")
    with pytest.raises(NotFound, match="no algorithm named 'magic'"):
        train(algorithm="magic")
    with pytest.raises(NotFound, match="no source named 'x'"):
        train(source="x")
    with pytest.raises(InvalidInput, match="not numeric"):
        train(target="contract", algorithm="linear_regression")
    with pytest.raises(InvalidInput, match="exactly one of a table and a query"):
        train(table=None)
    with pytest.raises(InvalidInput, match="runs no SQL"):
        train(table=None, query="SELECT 1")
    with services.uow() as uow:
        assert uow.models.all() == []
    assert list(services.settings.artifact_dir.rglob("*.skops")) == []


def test_postgresql_reads_through_arrow_and_gets_the_same_rows(
    rows: pd.DataFrame, postgres_url: str
) -> None:
    from mlgate.schema import conform, infer_columns
    from mlgate.sources.sql import SqlSource

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        rows.to_sql("customers", conn, index=False)
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN price NUMERIC(10, 2) DEFAULT 9.95"))
    engine.dispose()
    source = SqlSource("pg", postgres_url)
    try:
        fast = source._read_arrow('SELECT * FROM "customers"')
        assert fast is not None, "the ADBC driver should read PostgreSQL"
        via_table = source.read_table("customers")
        reader = sa.create_engine(postgres_url)
        with reader.connect() as conn:
            slow = pd.read_sql_query(sa.text("SELECT * FROM customers"), conn)
        reader.dispose()
    finally:
        source.close()
    columns = infer_columns(slow.assign(price=slow.price.astype(float)))
    assert {c.name: c.type for c in infer_columns(fast)} == {c.name: c.type for c in columns}
    pd.testing.assert_frame_equal(
        conform(fast, columns), conform(slow.assign(price=slow.price.astype(float)), columns)
    )
    pd.testing.assert_frame_equal(conform(via_table, columns), conform(fast, columns))
