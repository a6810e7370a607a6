"""A linear regression fitted on every row (`--test-size 0`) and served through the whole app
predicts what exact least squares predicts, to 7 significant digits, on designs with condition
numbers from 1e8 to 1e12 (scikit-learn's LinearRegression by default cut the smallest singular
values of such designs and lost five digits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.service import create_key
from mlgate.api.app import create_app
from mlgate.plans.service import create_plan, make_plan, subscribe
from mlgate.sources import demo
from mlgate.sources.service import add_source
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import make_services
from tests.unit.test_ols_certified import DELTAS, exact_fit, ill_conditioned


def test_served_predictions_equal_exact_least_squares(tmp_path: Path) -> None:
    services = make_services(tmp_path / "home")
    now = services.clock()
    tables = {}
    for i, delta in enumerate(DELTAS):
        X, y = ill_conditioned(delta)
        frame = pd.DataFrame(X, columns=["x1", "x2", "x3"]).assign(y=y)
        tables[f"design{i}"] = (X, y, frame)
        demo.write_sqlite(tmp_path / "designs.db", frame, table=f"design{i}")
    add_source(services.uow(), services.open_source, name="lab",
               url=f"sqlite:///{tmp_path / 'designs.db'}", cwd=tmp_path, now=now)  # fmt: skip
    create_consumer(services.uow(), by=None, name="acme", description="", now=now)
    create_plan(services.uow(), make_plan("open", now), by=None)
    subscribe(services.uow(), by=None, consumer="acme", plan="open", now=now)
    _, token = create_key(services.uow(), services.server_secret, by=None,
                          owner_kind="consumer", owner="acme", name="k", now=now)  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    for name in tables:
        spec = TrainSpec(name, "lab", "y", "linear_regression", table=name, test_size=0.0,
                         report=False)  # fmt: skip
        train_model(services.uow(), services.artifacts, services.open_source, spec,
                    now=services.clock)  # fmt: skip
        add_grant(services.uow(), by=None, subject_kind="consumer", subject="acme", target=name,
                  role="consumer", now=now, actor="test")  # fmt: skip
    with TestClient(create_app(services)) as client:
        for name, (X, y, frame) in tables.items():
            rows = frame.drop(columns="y").to_dict(orient="records")
            answer = client.post(f"/v1/models/{name}/predict", headers=headers,
                                 json={"rows": rows})  # fmt: skip
            assert answer.status_code == 200, answer.text
            _, _, fitted = exact_fit(X, y)
            served = np.array(answer.json()["predictions"])
            np.testing.assert_allclose(served, fitted, rtol=1e-7, err_msg=name)
    services.close()


@pytest.mark.parametrize("delta", DELTAS[-1:])
def test_scikit_learns_default_tolerance_would_not_pass(delta: float) -> None:
    """Why the catalogue sets LinearRegression's tol: its default loses these digits."""
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = ill_conditioned(delta)
    _, _, fitted = exact_fit(X, y)
    default = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y).predict(X)
    assert np.max(np.abs(default - fitted) / np.abs(fitted)) > 1e-7
