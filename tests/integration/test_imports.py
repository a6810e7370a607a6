"""Models trained elsewhere, imported over the API and served by all three protocols: the same
answers as their own library gives on the same rows (labels exact, numbers to 1e-6; ONNX runs in
ONNX Runtime either way, so it is compared with ONNX Runtime called directly)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from mlgate.api.app import create_app
from mlgate.bootstrap import Services
from mlgate.explainers import shap_kernel
from mlgate.registry.doctor import check_registry
from mlgate.registry.service import resolve_version
from tests.conftest import admin_token, make_services

N = 240
RNG = np.random.default_rng(7)
FRAME = pd.DataFrame(RNG.normal(size=(N, 4)), columns=["age", "income", "visits", "score"])
LABELS = np.where(FRAME.age + 0.8 * FRAME.income + RNG.normal(scale=0.6, size=N) > 0, "yes", "no")
AMOUNT = 3 * FRAME.visits - FRAME.score + RNG.normal(scale=0.3, size=N)


@dataclass(frozen=True)
class Made:
    """A model file (or MLflow directory) and what its own library answers on FRAME."""

    path: Path
    labels: list[Any] | None  # classifiers
    proba: np.ndarray | None
    values: np.ndarray | None  # regressors
    fields: dict[str, str]  # the upload's other form fields
    tolerance: float = 1e-6


def sklearn_pipeline(folder: Path) -> Made:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(FRAME, LABELS)
    sio.dump(model, folder / "pipeline.skops")
    return Made(folder / "pipeline.skops", model.predict(FRAME).tolist(),
                model.predict_proba(FRAME), None, {})  # fmt: skip


def xgboost_classifier(folder: Path) -> Made:
    import xgboost

    codes = (LABELS == "yes").astype(int)
    model = xgboost.XGBClassifier(n_estimators=30, max_depth=3).fit(FRAME, codes)
    model.save_model(folder / "model.ubj")
    return Made(folder / "model.ubj", model.predict(FRAME).tolist(),
                model.predict_proba(FRAME), None, {})  # fmt: skip


def lightgbm_regressor(folder: Path) -> Made:
    import lightgbm

    model = lightgbm.LGBMRegressor(n_estimators=40, verbose=-1).fit(FRAME, AMOUNT)
    model.booster_.save_model(folder / "model.txt")
    return Made(folder / "model.txt", None, None, model.predict(FRAME), {})


def catboost_classifier(folder: Path) -> Made:
    import catboost

    model = catboost.CatBoostClassifier(iterations=30, verbose=0, allow_writing_files=False)
    model.fit(FRAME, LABELS)
    model.save_model(str(folder / "model.cbm"))
    return Made(folder / "model.cbm", model.predict(FRAME).ravel().tolist(),
                model.predict_proba(FRAME), None, {})  # fmt: skip


def torch_network(folder: Path) -> Made:
    import onnxruntime
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    torch.onnx.export(
        net, (torch.zeros(1, 4),), str(folder / "net.onnx"), input_names=["x"],
        output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
    )  # fmt: skip
    session = onnxruntime.InferenceSession(str(folder / "net.onnx"))
    logits = session.run(None, {"x": FRAME.to_numpy("float32")})[0].astype("float64")
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    classes = ["low", "mid", "high"]
    return Made(folder / "net.onnx", [classes[k] for k in proba.argmax(axis=1)], proba, None,
                {"task": "classification", "classes": ",".join(classes)})  # fmt: skip


def mlflow_xgboost(folder: Path) -> Made:
    import mlflow.xgboost
    import xgboost
    from mlflow.models import infer_signature

    model = xgboost.XGBRegressor(n_estimators=30, max_depth=3).fit(FRAME, AMOUNT)
    mlflow.xgboost.save_model(model, folder / "mlflow-xgb", signature=infer_signature(FRAME))
    return Made(_zipped(folder / "mlflow-xgb"), None, None, model.predict(FRAME), {})


def mlflow_lightgbm(folder: Path) -> Made:
    import lightgbm
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    codes = (LABELS == "yes").astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(FRAME, codes)
    mlflow.lightgbm.save_model(model, folder / "mlflow-lgb", signature=infer_signature(FRAME))
    return Made(_zipped(folder / "mlflow-lgb"), model.predict(FRAME).tolist(),
                model.predict_proba(FRAME), None, {})  # fmt: skip


def _zipped(directory: Path) -> Path:
    return Path(shutil.make_archive(str(directory), "zip", directory))


Served = tuple[Services, TestClient, dict[str, str]]
MAKERS: dict[str, Callable[[Path], Made]] = {
    "sklearn-skops": sklearn_pipeline,
    "xgboost": xgboost_classifier,
    "lightgbm": lightgbm_regressor,
    "catboost": catboost_classifier,
    "onnx-torch": torch_network,
    "mlflow-xgboost": mlflow_xgboost,
    "mlflow-lightgbm": mlflow_lightgbm,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    services = make_services(tmp_path_factory.mktemp("imports") / "home")
    token = admin_token(services, "train", "read", "predict")
    with TestClient(create_app(services)) as client:
        yield services, client, {"Authorization": f"Bearer {token}"}
    services.close()


def upload(
    client: TestClient, headers: dict[str, str], name: str, path: Path, **fields: Any
) -> Any:
    files: list[tuple[str, tuple[str, bytes]]] = [("file", (path.name, path.read_bytes()))]
    for key in ("input_example", "holdout"):
        frame = fields.pop(key, None)
        if frame is not None:
            files.append((key, (f"{key}.csv", frame.to_csv(index=False).encode())))
    data = {k: v for k, v in fields.items() if v is not None}
    return client.post(f"/v1/models/{name}/import-file", headers=headers, files=files, data=data)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_an_imported_model_answers_as_its_library_does_over_every_protocol(
    server: Served, tmp_path: Path, kind: str
) -> None:
    services, client, headers = server
    # The warning filters are one per process (Python 3.11): numba compiling the TreeSHAP loops
    # in its thread (an earlier kind's explanations started it) enters and leaves its own
    # catch_warnings, and on leaving would put back "error" in the middle of the block below.
    for compiling in shap_kernel._WARMING:
        compiling.join(timeout=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the libraries' own chatter while they save
        made = MAKERS[kind](tmp_path)
    name = f"ext-{kind}"
    answer = upload(client, headers, name, made.path, input_example=FRAME.head(20), **made.fields)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert [c["name"] for c in body["columns"]] == list(FRAME.columns)
    assert body["import"]["sha256"] and body["metrics"] == {}
    records = FRAME.to_dict(orient="records")
    ours = client.post(f"/v1/models/{name}/predict", headers=headers, json={"rows": records})
    assert ours.status_code == 200, ours.text
    predicted = ours.json()
    # Its stored rows are an example, not its training data: no claim of what training saw.
    far = client.post(f"/v1/models/{name}/predict", headers=headers,
                      json={"rows": [{c: 1e9 for c in FRAME.columns}]})  # fmt: skip
    assert far.status_code == 200 and "warnings" not in far.json()
    if made.labels is not None:
        assert made.proba is not None
        assert [str(v) for v in predicted["predictions"]] == [str(v) for v in made.labels]
        np.testing.assert_allclose(predicted["probabilities"], made.proba, atol=made.tolerance)
    else:
        assert made.values is not None
        np.testing.assert_allclose(predicted["predictions"], made.values, atol=made.tolerance)
    mlflow = client.post(
        f"/v1/models/{name}/invocations", headers=headers,
        json={"dataframe_split": {"columns": list(FRAME.columns), "data": FRAME.values.tolist()}},
    )  # fmt: skip
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json()["predictions"] == predicted["predictions"]
    oip = client.post(
        f"/v2/models/{name}/infer",
        headers=headers,
        json={"inputs": [{"name": "rows", "shape": [N, 4], "datatype": "FP64",
                          "data": FRAME.values.ravel().tolist()}]},
    )  # fmt: skip
    assert oip.status_code == 200, oip.text
    outputs = {o["name"]: o["data"] for o in oip.json()["outputs"]}
    assert outputs["predict"] == predicted["predictions"]
    # Explained as ours are: a booster by its library's TreeSHAP, others by sampling against
    # the input example (the version's reference rows).
    explained = client.post(f"/v1/models/{name}/predict", headers=headers,
                            json={"rows": records[:5], "explain": True})  # fmt: skip
    assert explained.status_code == 200, explained.text
    trees = kind in ("xgboost", "lightgbm", "catboost", "mlflow-xgboost")
    assert explained.json()["explanation"]["method"] == ("tree_shap" if trees else "sampling")
    for row in explained.json()["explanations"]:
        total = row["base"] + sum(row["contributions"].values())
        assert row["value"] == pytest.approx(total, abs=1e-6)


def test_a_holdout_gives_metrics_a_report_and_a_comparison_with_a_trained_version(
    server: Served, tmp_path: Path
) -> None:
    services, client, headers = server
    made = xgboost_classifier(tmp_path)
    holdout = FRAME.assign(bought=np.where(LABELS == "yes", 1, 0))
    first = upload(client, headers, "ext-holdout", made.path, holdout=holdout)
    assert first.status_code == 201, first.text
    metrics = first.json()["metrics"]
    codes = (LABELS == "yes").astype(int)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(np.array(made.labels) == codes)))
    version = client.get("/v1/models/ext-holdout", headers=headers).json()
    report = client.get("/v1/models/ext-holdout/versions/1/report", headers=headers)
    assert report.status_code == 200 and "permutation importance" in report.text
    assert version  # the model is listed like any other
    # A weaker model of the same thing, then promotion guarded by the paired test.
    import xgboost

    weak = xgboost.XGBClassifier(n_estimators=1, max_depth=1).fit(FRAME[["visits"]].assign(
        age=0.0, income=0.0, score=0.0)[list(FRAME.columns)], codes)  # fmt: skip
    weak.save_model(tmp_path / "weak.ubj")
    second = upload(client, headers, "ext-holdout", tmp_path / "weak.ubj", holdout=holdout)
    assert second.status_code == 201, second.text
    promote = client.post(
        "/v1/models/ext-holdout/aliases/production", headers=headers,
        json={"version": 1},
    )  # fmt: skip
    assert promote.status_code == 200, promote.text
    guarded = client.post(
        "/v1/models/ext-holdout/aliases/production", headers=headers,
        json={"version": 2, "require_better": True},
    )  # fmt: skip
    assert guarded.status_code == 409 and "not significantly better" in guarded.json()["detail"]
    # An imported version travels in an export bundle like a trained one.
    bundle = client.get("/v1/models/ext-holdout/versions/1/export", headers=headers)
    assert bundle.status_code == 200, bundle.text
    moved = client.post("/v1/models/ext-moved/import", headers=headers, content=bundle.content)
    assert moved.status_code == 201, moved.text
    rows = {"rows": FRAME.head(30).to_dict(orient="records")}
    there = client.post("/v1/models/ext-moved/predict", headers=headers, json=rows).json()
    here = client.post("/v1/models/ext-holdout/predict?version=1", headers=headers, json=rows)
    assert there["probabilities"] == here.json()["probabilities"]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: _write(d / "model.pkl", b"\x80\x04\x95\x00"), "pickle_refused"),
        (lambda d: _write(d / "model.onnx", b"tree\nversion=v4\n"), "format_mismatch"),
        (lambda d: _write(d / "model.txt", b"hello, not a model"), "not_a_model_file"),
        (lambda d: _truncated(d), "damaged_file"),
        (lambda d: _untrusted_skops(d), "untrusted_types"),
        (lambda d: _pickled_mlflow(d), "pickle_refused"),
        (lambda d: _dynamic_onnx(d), "unsupported_graph"),
        (lambda d: _unknown_operator_onnx(d), "unsupported_graph"),
    ],
    ids=[
        "pickle",
        "mismatch",
        "not-a-model",
        "truncated",
        "untrusted",
        "mlflow-pickle",
        "dynamic",
        "operator",
    ],  # fmt: skip
)
def test_a_bad_file_is_refused_by_name_and_leaves_nothing(
    server: Served,
    tmp_path: Path,
    make: Callable[[Path], Path],
    code: str,
) -> None:
    services, client, headers = server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = make(tmp_path)
    keys_before = set(services.artifacts.list_keys())
    answer = upload(client, headers, "ext-refused", path, input_example=FRAME.head(5))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code, answer.json()
    assert client.get("/v1/models/ext-refused", headers=headers).status_code == 404
    assert set(services.artifacts.list_keys()) == keys_before
    assert check_registry(services.uow(), services.artifacts)[1] == []


def test_a_schema_that_does_not_match_the_example_is_refused(
    server: Served, tmp_path: Path
) -> None:
    _, client, headers = server
    made = xgboost_classifier(tmp_path)
    wrong = FRAME.drop(columns=["score"]).head(5)
    answer = upload(client, headers, "ext-schema", made.path, input_example=wrong)
    assert answer.status_code == 422 and answer.json()["code"] == "schema_mismatch"
    assert "score" in answer.json()["detail"]


def test_trusting_a_type_needs_an_admin_and_is_in_the_audit_log(
    server: Served, tmp_path: Path
) -> None:
    services, client, headers = server
    path = _untrusted_skops(tmp_path)
    trusted = "sklearn.ensemble._gb.GradientBoostingClassifier"
    answer = upload(client, headers, "ext-trusted", path, trust=None)
    assert answer.json()["code"] == "untrusted_types" and trusted in answer.json()["detail"]
    from mlgate.registry import formats

    needed = sorted(formats.types_in(path.read_bytes()) - formats.TRUSTED_TYPES)
    assert trusted in needed
    files = [("file", (path.name, path.read_bytes()))]
    extra = {"trust": needed}
    url = "/v1/models/ext-trusted/import-file"
    refused = client.post(url, headers=headers, files=files, data=extra)
    assert refused.status_code == 403 and refused.json()["code"] == "missing_scope"
    admin = {"Authorization": f"Bearer {admin_token(services, 'admin', 'train', user='root')}"}
    answer = client.post(url, headers=admin, files=files, data=extra)
    assert answer.status_code == 201, answer.text
    assert answer.json()["import"]["trusted"] == needed
    from mlgate.access import audit
    from mlgate.access.model import AuditQuery

    events = audit.query(services.uow(), AuditQuery(action="models.import_file"))
    assert any(e.target == "ext-trusted@v1" and e.detail["trusted"] == needed for e in events)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(folder: Path) -> Path:
    made = lightgbm_regressor(folder)
    data = made.path.read_bytes()
    return _write(folder / "cut.txt", data[: len(data) // 3])


def _untrusted_skops(folder: Path) -> Path:
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=5).fit(FRAME, LABELS)
    sio.dump(model, folder / "gb.skops")
    return folder / "gb.skops"


def _pickled_mlflow(folder: Path) -> Path:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(FRAME, LABELS)
    mlflow.sklearn.save_model(model, folder / "pickled", serialization_format="cloudpickle")
    return _zipped(folder / "pickled")


def _unknown_operator_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    model.ir_version = 8
    onnx.save(model, folder / "custom.onnx")
    return folder / "custom.onnx"


def _dynamic_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "k"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "k"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, folder / "dynamic.onnx")
    return folder / "dynamic.onnx"


def test_the_cli_imports_a_file_with_a_holdout_from_a_source_table(
    services: Services, tmp_path: Path
) -> None:
    """`mlgate models import-file` with --holdout SOURCE:TABLE; a pickle exits 3, naming why."""
    import sqlite3

    from typer.testing import CliRunner

    from mlgate.cli.main import app as cli
    from tests.conftest import add_source_to

    made = lightgbm_regressor(tmp_path)
    database = tmp_path / "rows.db"
    with sqlite3.connect(database) as connection:
        FRAME.assign(amount=AMOUNT).to_sql("holdout", connection, index=False)
    add_source_to(services, "warehouse", f"sqlite:///{database}", cwd=tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["models", "import-file", "spend", str(made.path), "--holdout", "warehouse:holdout"],
        obj=services,
    )
    assert result.exit_code == 0, result.output
    assert "imported model.txt (lightgbm) as spend@v1" in result.output

    version = resolve_version(services.uow(), "spend", 1)
    assert version.target == "amount" and version.lineage.source_url == "file model.txt"
    residuals = made.values - AMOUNT.to_numpy()  # type: ignore[operator]
    assert version.metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean(residuals**2))))
    pickle = _write(tmp_path / "model.joblib", b"\x80\x04\x95\x00")
    refused = runner.invoke(cli, ["models", "import-file", "spend", str(pickle)], obj=services)
    assert refused.exit_code == 3 and "never unpickles" in refused.output


def test_an_imported_version_is_monitored_against_its_input_example(
    server: Served, tmp_path: Path
) -> None:
    """Drift is measured against the input example (no holdout); the per-model OpenAPI
    document describes its columns."""
    from mlgate.schema import rows_to_table

    services, client, headers = server
    made = xgboost_classifier(tmp_path)
    answer = upload(client, headers, "ext-watched", made.path, input_example=FRAME)
    assert answer.status_code == 201, answer.text
    document = client.get("/v1/models/ext-watched/openapi.json", headers=headers)
    assert document.status_code == 200 and "visits" in document.text
    services.monitor.configure("ext-watched", sample_rate=1.0)
    version = resolve_version(services.uow(), "ext-watched", 1)
    shifted = FRAME.assign(age=FRAME.age + 3).to_dict(orient="records")
    for i in range(0, N, 60):
        table = rows_to_table(shifted[i : i + 60], version.columns, max_rows=100)
        said = services.predictors.get(version).score(table).predictions
        assert services.recorder.offer("ext-watched", 1, "user:ann", f"req-{i:04d}", table, said)
    assert services.recorder.flush() == N // 60
    result = services.monitor.check("ext-watched")
    assert result.state == "drifting"
    assert result.details["versions"]["1"]["drifted"] == ["age"]


def test_an_imported_version_is_promoted_over_a_trained_one_only_if_better(
    server: Served, tmp_path: Path
) -> None:
    """--require-better compares a trained version and an imported one on the imported
    version's holdout, with the paired test."""
    from mlgate.sources import demo
    from mlgate.training.service import TrainSpec, train_model
    from tests.conftest import add_source_to

    services, client, headers = server
    database = tmp_path / "shop.db"
    labelled = FRAME.assign(bought=LABELS)
    demo.write_sqlite(database, labelled, table="customers")
    add_source_to(services, "shop", f"sqlite:///{database}", cwd=tmp_path)
    weak = TrainSpec("ext-mixed", "shop", "bought", "decision_tree", table="customers",
                     drop=("age", "income"), params={"max_depth": 1}, report=False)  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, weak,
                now=services.clock)  # fmt: skip
    made = sklearn_pipeline(tmp_path)
    imported = upload(client, headers, "ext-mixed", made.path, holdout=labelled)
    assert imported.status_code == 201, imported.text
    assert imported.json()["version"] == 2
    first = client.post("/v1/models/ext-mixed/aliases/production", headers=headers,
                        json={"version": 1})  # fmt: skip
    assert first.status_code == 200, first.text
    better = client.post("/v1/models/ext-mixed/aliases/production", headers=headers,
                         json={"version": 2, "require_better": True})  # fmt: skip
    assert better.status_code == 200, better.text
    comparison = client.post("/v1/models/ext-mixed/compare", headers=headers,
                             json={"a": 1, "b": 2}).json()  # fmt: skip
    assert comparison["verdict"] == "v2 is better" and comparison["n_rows"] == N
