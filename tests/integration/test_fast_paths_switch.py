"""Every fast path checks itself where it switches (runtime/switches.py).

Degenerate boosters (single-leaf trees on the wine data, one class rare, depth 1, no split at all,
categorical splits in XGBoost and LightGBM) are explained before the compiled TreeSHAP loop is
switched in (numpy tables or the library) and after (the loop, or the library where it does not
apply), and every value is the library's own: `pred_contribs` / `pred_contrib` on the same rows.
A loop that disagrees with the library on the probe rows is never switched in; a path that raises
later is retired, logged once, and the library answers. The switch is made deterministic by
holding `shap_kernel.ready` to False, then compiling with `shap_kernel.compile_now`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from mlgate.bootstrap import Services
from mlgate.explainers import shap_kernel
from mlgate.explainers.explain import TABLES, _native_contributions
from mlgate.registry.service import resolve_version
from mlgate.schema import Table, conform
from mlgate.sources import demo
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, make_services


def wine() -> pd.DataFrame:
    frame = load_wine(as_frame=True).frame
    rng = np.random.default_rng(3)
    frame["kind"] = np.asarray(["a", "b", "c"], dtype=object)[frame["target"].to_numpy()]
    frame["rare"] = np.where(np.arange(len(frame)) % 25 == 7, "rare", "common")  # 7 of 178
    frame["shade"] = rng.choice(["pale", "deep", "ruby"], size=len(frame)).astype(object)
    frame.loc[frame["target"] == 0, "shade"] = "pale"  # a category worth splitting on
    frame.loc[::13, "alcohol"] = np.nan
    return frame.drop(columns=["target"])


NUMBERS = ("shade",)  # dropped where the booster must see numbers only
CASES = {
    # name: (algorithm, target, params, drop, the implementation once compiled)
    "wine-single-leaves": ("xgboost", "kind", {"n_estimators": 60}, ("rare", *NUMBERS), TABLES),
    "one-class-rare": ("xgboost", "rare", {"n_estimators": 40}, ("kind", *NUMBERS), TABLES),
    "depth-1": ("xgboost", "kind", {"n_estimators": 30, "max_depth": 1}, ("rare", *NUMBERS),
                TABLES),
    "no-split-at-all": ("xgboost", "kind", {"n_estimators": 5, "min_child_weight": 1000},
                        ("rare", *NUMBERS), "xgboost pred_contribs"),
    "xgboost-categorical": ("xgboost", "kind", {"n_estimators": 30}, ("rare",),
                            "xgboost pred_contribs"),
    "lightgbm-categorical": ("lightgbm", "kind", {"n_estimators": 30, "min_child_samples": 5},
                             ("rare",), "lightgbm pred_contrib"),
    "lightgbm-one-class-rare": ("lightgbm", "rare", {"n_estimators": 30}, ("kind", *NUMBERS),
                                "lightgbm pred_contrib"),
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("switch")
    services = make_services(root / "home")
    demo.write_sqlite(root / "wine.db", wine(), table="wine")
    add_source_to(services, "wine", f"sqlite:///{root / 'wine.db'}", cwd=root)
    yield services
    services.close()


def trained(services: Services, case: str) -> Any:
    algorithm, target, params, drop, _ = CASES[case]
    spec = TrainSpec(case, "wine", target, algorithm, table="wine", drop=drop, params=params,
                     report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    return resolve_version(services.uow(), case, None)


def rows_of(version: Any, n: int | None = None) -> Table:
    frame = conform(wine().head(n), version.columns)
    return Table({k: frame[k].to_numpy() for k in frame.columns}, len(frame))


def library_values(services: Services, version: Any, rows: Table, explained: Any) -> np.ndarray:
    """The library's own TreeSHAP of the explained class, the base last."""
    predictor = services.predictors.get(version)
    model, X = predictor._pipeline[-1], predictor._transform(rows)
    found, _ = _native_contributions(version.algorithm, model, X)
    if found.shape[1] == 1:
        return found[:, 0]
    classes = list(version.classes or ())
    which = [classes.index(c) for c in explained.explained]
    picked: np.ndarray = found[np.arange(len(found)), which]
    return picked


def assert_the_librarys(services: Services, version: Any, rows: Table) -> str:
    explained = services.explainer(version).explain(rows)
    want = library_values(services, version, rows, explained)
    got = np.column_stack([explained.values, explained.base])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))
    # and the answer itself is the model's: the scores from the fast scorer are the library's
    predictor = services.predictors.get(version)
    scores = predictor.score(rows)
    X = predictor._transform(rows)
    proba = predictor._pipeline[-1].predict_proba(X)
    np.testing.assert_allclose(np.asarray(scores.probabilities), proba, rtol=0, atol=1e-6)
    return explained.implementation


@pytest.mark.parametrize("case", list(CASES))
def test_explanations_are_the_librarys_before_and_after_the_switch(
    world: Services, case: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    version = trained(world, case)
    few, many = rows_of(version, 3), rows_of(version)
    with monkeypatch.context() as held:  # before: the loop is not compiled yet
        held.setattr(shap_kernel, "ready", lambda: False)
        before_few = assert_the_librarys(world, version, few)
        assert_the_librarys(world, version, many)
    assert shap_kernel.compile_now()
    with caplog.at_level(logging.WARNING, logger="mlgate.serving"):
        after = {assert_the_librarys(world, version, rows) for rows in (few, many, few)}
    implementation = CASES[case][4]
    assert after == {implementation}  # the fast path where it applies, and it stayed in
    assert before_few == implementation
    assert not [r for r in caplog.records if "retired" in r.getMessage()]


def test_a_loop_that_disagrees_is_not_switched_in(
    world: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    version = trained(world, "wine-single-leaves")
    assert shap_kernel.compile_now()
    right = shap_kernel.contributions
    monkeypatch.setattr(shap_kernel, "contributions", lambda t, x: right(t, x) + 1e-3)
    with caplog.at_level(logging.WARNING, logger="mlgate.serving"):
        found = {assert_the_librarys(world, version, rows_of(version)) for _ in range(3)}
    assert found == {"xgboost pred_contribs"}
    refused = [r for r in caplog.records if "disagreed with the library" in r.getMessage()]
    assert len(refused) == 1 and "compiled TreeSHAP loop" in refused[0].getMessage()


def test_a_path_that_raises_later_is_retired_once(
    world: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    version = trained(world, "depth-1")
    assert shap_kernel.compile_now()
    assert assert_the_librarys(world, version, rows_of(version)) == TABLES  # switched in

    def broken(tables: Any, x: np.ndarray) -> np.ndarray:
        raise IndexError("a tree shape the loop gets wrong")

    monkeypatch.setattr(shap_kernel, "contributions", broken)
    with caplog.at_level(logging.WARNING, logger="mlgate.serving"):
        found = [assert_the_librarys(world, version, rows_of(version)) for _ in range(3)]
    assert found == ["xgboost pred_contribs"] * 3
    retired = [r for r in caplog.records if "retired" in r.getMessage()]
    assert len(retired) == 1 and "IndexError" in retired[0].getMessage()
    # small batches keep the checked numpy tables: only the loop was retired
    assert assert_the_librarys(world, version, rows_of(version, 3)) == TABLES


def test_over_http_the_wine_booster_explains_before_and_after_the_switch(
    world: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: 1 row and 178 rows with `explain`, 200 and the library's values
    before the loop is compiled and after; the loop's check runs off the event loop."""
    from starlette.testclient import TestClient

    from mlgate.api.app import create_app
    from tests.conftest import admin_token

    version = trained(world, "wine-single-leaves")
    headers = {"Authorization": f"Bearer {admin_token(world, 'predict', user='wine')}"}
    records = conform(wine(), version.columns).astype(object)
    records = records.where(records.notna(), None).to_dict("records")
    explainer = world.explainer(version)

    def explained(n: int) -> None:
        answer = client.post(f"/v1/models/{version.model_name}/predict", headers=headers,
                             json={"rows": records[:n], "explain": True})  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows = rows_of(version, n)
        found = np.array([[r["contributions"][c] for c in explainer.columns] + [r["base"]]
                          for r in body["explanations"]])  # fmt: skip
        want = library_values(world, version, rows, explainer.explain(rows))
        np.testing.assert_allclose(found, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))

    with TestClient(create_app(world)) as client:
        with monkeypatch.context() as held:
            held.setattr(shap_kernel, "ready", lambda: False)
            explained(1)
            explained(178)
            assert explainer.prepared()
        assert shap_kernel.compile_now()
        assert not explainer.prepared()  # the loop is checked first, in a thread
        explained(1)
        assert explainer.prepared()
        explained(178)


def test_a_fast_scorer_that_raises_is_retired_once(
    world: Services, caplog: pytest.LogCaptureFixture
) -> None:
    version = trained(world, "depth-1")
    predictor = world.predictors.get(version)
    assert predictor._fast is not None and predictor._fast.active
    rows = rows_of(version, 5)
    want = predictor.score(rows)

    def broken(x: np.ndarray) -> Any:
        raise FloatingPointError("a compiled tree the scorer misreads")

    predictor._fast._fast = broken
    with caplog.at_level(logging.WARNING, logger="mlgate.serving"):
        for _ in range(2):  # the library's float64 sums: within the compiled trees' 1e-6
            got = predictor.score(rows)
            assert got.predictions == want.predictions
            np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-6)  # type: ignore[arg-type]
    retired = [r for r in caplog.records if "retired" in r.getMessage()]
    assert len(retired) == 1 and "fast scorer" in retired[0].getMessage()
    assert not predictor._fast.active


def test_a_compiled_preprocessor_that_raises_is_retired_once(
    world: Services, caplog: pytest.LogCaptureFixture
) -> None:
    version = trained(world, "one-class-rare")
    predictor = world.predictors.get(version)
    assert predictor.compiled
    rows = rows_of(version, 10)
    want = predictor.score(rows)

    def broken(rows: Any) -> np.ndarray:
        raise ValueError("a column the compiled path misreads")

    predictor._compiled._fast = broken  # as if a compiled block had a defect
    with caplog.at_level(logging.WARNING, logger="mlgate.serving"):
        assert predictor.score(rows) == want
        assert predictor.score(rows) == want
    retired = [r for r in caplog.records if "retired" in r.getMessage()]
    assert len(retired) == 1 and "compiled preprocessor" in retired[0].getMessage()
