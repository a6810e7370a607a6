"""Export to ONNX and back: for every catalogue algorithm that converts, the graph (checked by
the export against the version on its holdout) is imported as a version of its own and served
by mlgate; it answers the holdout rows as the original version does (labels identical,
probabilities and values within the export's stated tolerance). Where no conversion exists, the
answer says so."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.errors import Conflict
from mlgate.exports.convert import NO_CONVERSION
from mlgate.exports.service import TOLERANCE, export_onnx, tied
from mlgate.imports.files import identify
from mlgate.imports.service import ImportRequest, import_model
from mlgate.registry.service import resolve_version
from mlgate.schema import conform
from mlgate.training.compare import holdout_rows
from tests.conftest import admin_token
from tests.integration.test_explanations import CASES, trained, world  # noqa: F401

# CatBoost converts on numbers only (this table has categories): its own test below.
CONVERTIBLE = [(a, t) for a, t in CASES if a not in NO_CONVERSION and a != "catboost"]


@pytest.mark.parametrize(("algorithm", "target"), CONVERTIBLE)
def test_a_version_exported_to_onnx_and_imported_back_answers_as_it_does(
    world: Services,  # noqa: F811
    algorithm: str,
    target: str,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = trained(world, algorithm, target)
    done = export_onnx(world.uow(), world.artifacts, world.predictors, name, None)
    assert done.rows_checked > 0 and done.max_difference <= TOLERANCE
    back = import_model(
        world.uow(), world.artifacts,
        ImportRequest(f"{name}-onnx", identify(f"{name}.onnx", done.data)), now=world.clock(),
    )  # fmt: skip
    original = resolve_version(world.uow(), name, None)
    assert back.task == original.task and back.classes == original.classes
    rows = holdout_rows(world.uow(), world.artifacts, original)
    ours = world.predictors.get(original).score(conform(rows, original.columns))
    theirs = world.predictors.get(back).score(conform(rows, back.columns))
    if original.task == "classification":
        ties = tied(np.asarray(ours.probabilities))  # float32 may rank an exact tie either way
        same = np.asarray(theirs.predictions) == np.asarray(ours.predictions)
        assert (same | ties).all() and ties.mean() < 0.1
        np.testing.assert_allclose(theirs.probabilities, ours.probabilities, atol=TOLERANCE)  # type: ignore[arg-type]
    else:
        expected = np.asarray(ours.predictions)
        np.testing.assert_allclose(theirs.predictions, expected, rtol=TOLERANCE, atol=TOLERANCE)


def test_the_api_and_cli_export_onnx_and_say_where_no_conversion_exists(
    world: Services,  # noqa: F811
    tmp_path: object,
) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = trained(world, "logistic_regression", "binary")
        boosted = trained(world, "catboost", "binary")  # strings: no conversion
    token = admin_token(world, "read", "train")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(world)) as client:
        answer = client.get(f"/v1/models/{name}/versions/1/export?format=onnx", headers=headers)
        assert answer.status_code == 200, answer.text
        assert int(answer.headers["x-mlgate-onnx-rows-checked"]) > 0
        assert answer.content[:1] == b"\x08"
        refused = client.get(f"/v1/models/{boosted}/versions/1/export?format=onnx",
                             headers=headers)  # fmt: skip
        assert refused.status_code == 409
        assert "has no ONNX conversion" in refused.json()["detail"]
    path = Path(str(tmp_path)) / "out.onnx"
    result = CliRunner().invoke(
        cli, ["models", "export", f"{name}@1", "--format", "onnx", "-o", str(path)], obj=world
    )
    assert result.exit_code == 0, result.output
    assert "labels identical" in result.output and path.read_bytes() == answer.content
    from dataclasses import replace

    from mlgate.exports.convert import convert

    forecaster = replace(resolve_version(world.uow(), name, None), task="forecast")
    with pytest.raises(Conflict, match="reads windows of a series"):
        convert(forecaster, None)


def test_catboost_converts_on_numbers_and_says_why_not_on_categories(
    world: Services,  # noqa: F811
    tmp_path: object,
) -> None:
    from pathlib import Path

    from mlgate.sources import demo
    from mlgate.training.service import TrainSpec, train_model
    from tests.conftest import add_source_to
    from tests.integration.test_explanations import SMALL, table

    numbers = table().drop(columns=["color", "size"])
    database = Path(str(tmp_path)) / "numbers.db"
    demo.write_sqlite(database, numbers, table="numbers")
    add_source_to(world, "numbers", f"sqlite:///{database}", cwd=Path(str(tmp_path)))
    for target in ("binary", "three", "value"):
        drop = tuple(t for t in ("binary", "three", "value") if t != target)
        name = f"catboost-numbers-{target}"
        spec = TrainSpec(name, "numbers", target, "catboost", table="numbers", drop=drop,
                         params=SMALL["catboost"], report=False)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_model(world.uow(), world.artifacts, world.open_source, spec, now=world.clock)
        done = export_onnx(world.uow(), world.artifacts, world.predictors, name, None)
        assert done.rows_checked > 0 and done.max_difference <= TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strings = trained(world, "catboost", "binary")
    with pytest.raises(Conflict, match="takes numbers only"):
        export_onnx(world.uow(), world.artifacts, world.predictors, strings, None)
