"""Text, dates, identifiers, constants and leaks: what the preprocessing does with each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.schema import rows_to_frame
from mlgate.training.service import TrainResult, TrainSpec, train_model
from tests.conftest import add_source_to

GOOD = ["great", "love", "excellent", "fast", "friendly", "recommend"]
BAD = ["awful", "slow", "broken", "rude", "refund", "never"]
PLAIN = ["the", "delivery", "product", "service", "box", "order", "arrived", "it", "was", "and"]


def reviews(n_rows: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n_rows):
        positive = rng.random() < 0.5
        mood = GOOD if positive else BAD
        words = (
            list(rng.choice(PLAIN, 8)) + list(rng.choice(mood, 2)) + list(rng.choice(GOOD + BAD, 1))
        )
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return pd.DataFrame(
        {"review": texts, "stars_shown": rng.integers(0, 2, n_rows), "label": labels}
    )


@pytest.fixture
def review_source(services: Services, tmp_path: Path) -> str:
    """A Parquet source "r" whose table "reviews" holds labelled free-text reviews."""
    reviews().to_parquet(tmp_path / "reviews.parquet")
    add_source_to(services, "r", str(tmp_path), cwd=tmp_path)
    return "r"


def train(services: Services, source: str, table: str, target: str, **kw: object) -> TrainResult:
    spec = TrainSpec(
        model_name=kw.pop("model_name", "m"),
        source=source,
        target=target,
        table=table,
        **{"report": False, **kw},
    )  # type: ignore[arg-type]
    return train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    )


@pytest.mark.parametrize("algorithm", ["logistic_regression", "naive_bayes", "svm", "linear_svm"])
def test_text_columns_are_vectorised(
    services: Services, review_source: str, algorithm: str
) -> None:
    version = train(
        services, "r", "reviews", "label", algorithm=algorithm, model_name=f"t-{algorithm}"
    ).version
    assert {c.name: c.type for c in version.columns}["review"] == "text"
    assert version.metrics["accuracy"] > 0.85
    frame = rows_to_frame(
        [
            {"review": "great and friendly, I recommend it", "stars_shown": 1},
            {"review": "awful, slow and rude; refund", "stars_shown": 0},
        ],
        version.columns,
        max_rows=10,
    )
    assert services.predictors.get(version).score(frame).predictions == ["positive", "negative"]


def test_boosters_refuse_text_with_advice(services: Services, review_source: str) -> None:
    with pytest.raises(InvalidInput, match="does not take free-text columns"):
        train(services, "r", "reviews", "label", algorithm="xgboost")


def test_naive_bayes_variant_can_be_named(services: Services, review_source: str) -> None:
    version = train(
        services, "r", "reviews", "label", algorithm="naive_bayes", params={"variant": "bernoulli"}
    ).version
    assert "binarize" in version.params  # BernoulliNB's own parameter
    with pytest.raises(InvalidInput, match="not one of gaussian"):
        train(
            services, "r", "reviews", "label", algorithm="naive_bayes", params={"variant": "magic"}
        )


def test_dates_from_postgresql_become_parts(
    services: Services, postgres_url: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    stamps = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, 300), unit="h")
    frame = pd.DataFrame({"signed_up": stamps, "spend": rng.normal(50, 10, 300)})
    frame["weekend"] = (frame.signed_up.dt.day_of_week >= 5).astype(int)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        frame.to_sql("signups", conn, index=False)
    engine.dispose()
    add_source_to(services, "pg", postgres_url, cwd=tmp_path)
    version = train(services, "pg", "signups", "weekend", algorithm="decision_tree").version
    assert {c.name: c.type for c in version.columns}["signed_up"] == "datetime"
    assert version.metrics["accuracy"] > 0.95  # day_of_week is one of the parts
    scores = services.predictors.get(version).score(
        rows_to_frame(
            [{"signed_up": "2026-11-28T09:00:00", "spend": 40.0}], version.columns, max_rows=1
        )
    )
    assert scores.predictions == [1]  # a Saturday


def test_identifiers_and_constants_are_left_out_with_a_note(
    services: Services, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(1000, 1200),
            "email": [f"user{i}@example.com" for i in range(200)],
            "country": "NZ",
            "x": x,
            "y": (x > 0).astype(int),
        }
    )
    frame.to_csv(tmp_path / "people.csv", index=False)
    add_source_to(services, "c", str(tmp_path), cwd=tmp_path)
    result = train(services, "c", "people", "y", algorithm="logistic_regression")
    assert [c.name for c in result.version.columns] == ["x"]
    notes = " ".join(result.warnings)
    assert (
        "'row_id'" in notes and "'email'" in notes and "'country': it holds a single value" in notes
    )


def test_a_copy_of_the_target_is_refused_as_leakage(services: Services, tmp_path: Path) -> None:
    x = np.random.default_rng(3).normal(size=100)
    frame = pd.DataFrame({"x": x, "answer": (x > 0).astype(int)})
    frame["answer_copy"] = frame["answer"]
    frame.to_csv(tmp_path / "leak.csv", index=False)
    add_source_to(services, "l", str(tmp_path), cwd=tmp_path)
    with pytest.raises(InvalidInput, match="'answer_copy' is a copy of the target.*leakage"):
        train(services, "l", "leak", "answer", algorithm="random_forest")
    with pytest.raises(InvalidInput, match="single value"):
        frame.assign(level=5.0).to_csv(tmp_path / "flat.csv", index=False)
        train(services, "l", "flat", "level", algorithm="ridge", drop=("answer_copy",))
    with services.uow() as uow:
        assert uow.models.all() == []


def test_naive_bayes_on_text_reports_the_words_of_each_class(
    services: Services, review_source: str
) -> None:
    version = train(
        services, "r", "reviews", "label", algorithm="naive_bayes", model_name="nb-words",
        report=True,
    ).version  # fmt: skip
    terms = (version.report or {})["indicative_terms"]
    assert set(terms) == {"negative", "positive"}
    for label, mood in (("positive", GOOD), ("negative", BAD)):
        words = [term for term, _ in terms[label] if " " not in term]  # not the word pairs
        assert len(words) >= 3 and all(word in mood for word in words), (label, terms[label])
    assert "indicative words" in (version.report or {})["plots"]
