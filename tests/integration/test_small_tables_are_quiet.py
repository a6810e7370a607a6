"""On a 16-row table (Longley's), every catalogue algorithm trains with its report through the
CLI without a library's warning reaching the terminal: what scikit-learn, statsmodels, numpy or
the boosters say about a tiny holdout or fold becomes a plain note. (pytest turns any warning
that escapes into an error as well.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from statsmodels.datasets import longley
from typer.testing import CliRunner

from mlgate.bootstrap import Services
from mlgate.cli.main import app
from mlgate.sources import demo
from mlgate.training.catalogue import CATALOGUE
from tests.conftest import make_services

CASES = [
    (name, task)
    for name, algorithm in CATALOGUE.items()
    for task in algorithm.tasks
    if task in ("classification", "regression")
]
NOISE = re.compile(r"Warning\b|warnings\.warn|\.py:\d+:|Traceback")


@pytest.fixture(scope="module")
def econ(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("sixteen")
    services = make_services(root / "home")
    frame = longley.load_pandas().data
    frame["unemployment"] = np.where(frame["UNEMP"] > frame["UNEMP"].median(), "high", "low")
    demo.write_sqlite(root / "econ.db", frame, table="longley")
    added = CliRunner().invoke(app, ["sources", "add", "econ", f"sqlite:///{root / 'econ.db'}"],
                               obj=services)  # fmt: skip
    assert added.exit_code == 0, added.output
    yield services
    services.close()


@pytest.mark.parametrize(("algorithm", "task"), CASES, ids=[f"{a}-{t}" for a, t in CASES])
def test_a_16_row_table_trains_without_library_noise(
    econ: Services, algorithm: str, task: str, tmp_path: Path
) -> None:
    target, leave_out = ("TOTEMP", "unemployment") if task == "regression" else (
        "unemployment", "UNEMP")  # fmt: skip
    result = CliRunner().invoke(
        app,
        ["train", f"{algorithm}-{task[:3]}", "--source", "econ", "--table", "longley",
         "--target", target, "--drop", leave_out, "--algorithm", algorithm, "--task", task],
        obj=econ,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not NOISE.findall(result.output), result.output
    assert "too few to resample" in result.output  # the one note that replaces the noise
    report = CliRunner().invoke(
        app,
        ["models", "report", f"{algorithm}-{task[:3]}", "-o", str(tmp_path / "r.html")],
        obj=econ,
    )
    assert report.exit_code == 0 and not NOISE.findall(report.output), report.output
    if algorithm == "logistic_regression":  # separable: its table says so, never crashes
        assert "Perfect separation:" in report.output, report.output
