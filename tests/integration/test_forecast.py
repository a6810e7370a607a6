"""Recurrent forecasters (rnn, lstm, gru) on an ordered table with several series: they beat the
seasonal-naive forecast, forecast from a history, and load back to the same numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgate.bootstrap import Services
from mlgate.errors import InvalidInput
from mlgate.registry.service import read_attachment, resolve_version
from mlgate.training.report import plot_files
from mlgate.training.service import TrainSpec, train_model
from tests.conftest import add_source_to, cancel_after_first_epoch, make_services
from tests.integration.test_compare import admin_browser

pytest.importorskip("torch")

SEASON, WINDOW, HORIZON = 12, 24, 3
PARAMS = {
    "order_by": "t",
    "group_by": "store",
    "season": SEASON,
    "window": WINDOW,
    "horizon": HORIZON,
    "max_epochs": 80,
}


def sales(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Three stores: a yearly season (12), a slow trend and noise, rows shuffled."""
    rng = np.random.default_rng(seed)
    parts = []
    for store, level in (("north", 20.0), ("south", 35.0), ("east", 50.0)):
        t = np.arange(n)
        value = level + 6 * np.sin(2 * np.pi * t / SEASON) + 0.05 * t + rng.normal(0, 1.0, n)
        parts.append(pd.DataFrame({"store": store, "t": t, "sales": value.round(3)}))
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("forecast")
    services = make_services(folder / "home")
    table = sales()
    table.to_csv(folder / "sales.csv", index=False)
    add_source_to(services, "shop", str(folder), cwd=folder)
    for cell in ("lstm", "gru"):
        spec = TrainSpec(cell, "shop", "sales", cell, table="sales", params=PARAMS)
        train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        )
    return services, table


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_it_beats_the_seasonal_naive_forecast_and_the_report_shows_both(
    trained: tuple[Services, pd.DataFrame], cell: str
) -> None:
    services, _ = trained
    version = resolve_version(services.uow(), cell, None)
    assert version.task == "forecast" and version.algorithm == cell
    metrics = version.metrics
    assert metrics["mae"] < metrics["seasonal_naive_mae"], metrics
    assert metrics["mase"] < 1
    page = read_attachment(services.uow(), services.artifacts, version, "report.html").decode()
    assert "<th>seasonal_naive_mae</th>" in page and "<th>mae</th>" in page
    assert 'alt="forecasts"' in page and 'alt="loss curve"' in page
    assert (version.report or {})["forecast"]["test_windows"] > 0
    assert (version.report or {})["plots"] == ["forecasts", "loss curve"]
    drawn = plot_files(page.encode())  # what `mlgate models report --plots` writes
    assert sorted(drawn) == ["forecasts.png", "loss-curve.png"]
    assert all(image.startswith(b"\x89PNG") for image in drawn.values())


def test_the_dashboard_shows_a_forecasters_report_with_its_plots_captioned(
    trained: tuple[Services, pd.DataFrame],
) -> None:
    services, _ = trained
    version = resolve_version(services.uow(), "lstm", None)
    with admin_browser(services) as browser:
        page = browser.get(f"/ui/models/lstm/versions/{version.number}/report").text
    kinds = re.findall(r'<figure class="plot[^"]*" id="plot-([^"]+)"', page)
    assert kinds == ["forecasts", "loss-curve"]
    windows = (version.report or {})["forecast"]["test_windows"]
    assert f"the metrics are over {windows} held-out windows of all series" in page
    assert "loss per epoch while it was fitted" in page
    assert '<th scope="row">seasonal_naive_mae</th>' in page


def test_a_forecast_reads_the_last_window_and_loads_back_the_same(
    trained: tuple[Services, pd.DataFrame],
) -> None:
    services, table = trained
    version = resolve_version(services.uow(), "lstm", None)
    north = table[table["store"] == "north"].sort_values("t")["sales"].tolist()
    ahead = services.predictors.get(version).forecast(north)
    assert len(ahead) == HORIZON and all(isinstance(v, float) for v in ahead)
    # The next values continue the season: close to the pattern that made the series.
    t = np.arange(len(north), len(north) + HORIZON)
    expected = 20 + 6 * np.sin(2 * np.pi * t / SEASON) + 0.05 * t
    assert np.abs(np.asarray(ahead) - expected).max() < 3.0
    services.predictors.clear()  # loaded again from JSON + safetensors
    assert services.predictors.get(version).forecast(north) == ahead
    assert services.predictors.get(version).forecast(north[-WINDOW:]) == ahead
    with pytest.raises(InvalidInput, match=f"reads the last {WINDOW}"):
        services.predictors.get(version).forecast(north[:5])


def test_a_plain_rnn_trains_too_and_bad_settings_are_named(
    services: Services, tmp_path: Path
) -> None:
    sales(120).to_csv(tmp_path / "sales.csv", index=False)
    add_source_to(services, "shop", str(tmp_path), cwd=tmp_path)
    quick = {**PARAMS, "max_epochs": 5}
    spec = TrainSpec("plain", "shop", "sales", "rnn", table="sales", params=quick, report=False)
    version = train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version
    assert version.task == "forecast" and np.isfinite(version.metrics["mae"])
    for params, message in [
        ({k: v for k, v in quick.items() if k != "order_by"}, "the parameter order_by=COLUMN"),
        ({**quick, "order_by": "when"}, "no column 'when' for order_by"),
        ({**quick, "window": 1}, "window must lie in [2, 10000]"),
        ({**quick, "season": 48}, "season 48 is longer than the window 24"),
        ({**quick, "window": 200}, "no series is long enough"),
    ]:
        bad = TrainSpec("bad", "shop", "sales", "lstm", table="sales", params=params)
        with pytest.raises(InvalidInput, match=re.escape(message)):
            train_model(
                services.uow(), services.artifacts, services.open_source, bad, now=services.clock
            )
    with services.uow() as uow:
        assert uow.models.get("bad") is None


def test_the_models_own_openapi_document_describes_its_forecast(
    trained: tuple[Services, pd.DataFrame],
) -> None:
    from mlgate.serving.openapi import model_openapi

    services, _ = trained
    version = resolve_version(services.uow(), "gru", None)
    document = model_openapi(version, path_name="gru")
    operation = document["paths"]["/v1/models/gru/forecast"]["post"]
    history = operation["requestBody"]["content"]["application/json"]["schema"]
    assert history["properties"]["history"]["minItems"] == WINDOW
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["forecast"]["maxItems"] == HORIZON


def test_a_cancelled_forecaster_job_registers_nothing(services: Services, tmp_path: Path) -> None:
    sales(240).to_csv(tmp_path / "sales.csv", index=False)
    add_source_to(services, "shop", str(tmp_path), cwd=tmp_path)
    params = {**PARAMS, "max_epochs": 10_000, "patience": 10_000}
    spec = TrainSpec("stopped", "shop", "sales", "lstm", table="sales", params=params)
    assert cancel_after_first_epoch(services, spec) == "cancelled"
    with services.uow() as uow:
        assert uow.models.get("stopped") is None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sequence_classification_reads_each_row_as_a_sequence(
    services: Services, tmp_path: Path, cell: str
) -> None:
    """Rows of 24 readings (t00..t23): a sine wave of random phase, or a random walk. Which
    is which shows only in how the readings follow one another."""
    rng = np.random.default_rng(5)
    n = 400
    t = np.arange(24)
    waves = np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi, (n // 2, 1)))
    walks = np.cumsum(rng.normal(0, 0.35, (n // 2, 24)), axis=1)
    readings = np.vstack([waves + rng.normal(0, 0.1, waves.shape), walks])
    table = pd.DataFrame(readings.round(4), columns=[f"t{i:02d}" for i in t])
    table["kind"] = ["wave"] * (n // 2) + ["walk"] * (n // 2)
    table.sample(frac=1.0, random_state=1).to_csv(tmp_path / "signals.csv", index=False)
    add_source_to(services, "lab", str(tmp_path), cwd=tmp_path)
    spec = TrainSpec(
        f"signals-{cell}", "lab", "kind", cell, table="signals", params={"max_epochs": 60},
        report=False,
    )  # fmt: skip
    version = train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version
    assert version.task == "classification" and version.artifact.format == "torch"
    assert version.metrics["accuracy"] >= 0.9, version.metrics


def test_tuning_sees_only_the_training_part_and_records_its_choice(
    services: Services, tmp_path: Path
) -> None:
    from mlgate.training.forecasting import without_holdout
    from mlgate.training.tuning import TuneSpec

    table = sales(120)
    seen = without_holdout(table, target="sales", data=PARAMS, test_size=0.2, horizon=HORIZON)
    for store, rows in seen.groupby("store"):
        assert rows["t"].max() == 120 - 24 - 1, store  # the last 20% of each series held out
    table.to_csv(tmp_path / "sales.csv", index=False)
    add_source_to(services, "shop", str(tmp_path), cwd=tmp_path)
    spec = TrainSpec(
        "tuned", "shop", "sales", "gru", table="sales", params={**PARAMS, "max_epochs": 3},
        tune=TuneSpec(trials=2), report=False,
    )  # fmt: skip
    version = train_model(
        services.uow(), services.artifacts, services.open_source, spec, now=services.clock
    ).version
    tuned = (version.report or {})["tuned"]
    assert set(tuned) == {"hidden_size", "num_layers", "learning_rate", "window"}
    assert tuned["window"] >= SEASON
    assert version.params["hidden_size"] == tuned["hidden_size"]


def test_a_fresh_process_forecasts_the_same(trained: tuple[Services, pd.DataFrame]) -> None:
    import json
    import subprocess
    import sys

    services, table = trained
    north = table[table["store"] == "north"].sort_values("t")["sales"].tolist()
    version = resolve_version(services.uow(), "gru", None)
    here = services.predictors.get(version).forecast(north)
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from mlgate.registry.service import resolve_version\n"
        "from tests.conftest import make_services\n"
        "services = make_services(Path(sys.argv[1]))\n"
        "version = resolve_version(services.uow(), 'gru', None)\n"
        "print(json.dumps(services.predictors.get(version).forecast(json.loads(sys.argv[2]))))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(services.settings.home), json.dumps(north)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == here
