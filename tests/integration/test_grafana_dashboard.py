"""deploy/grafana-dashboard.json against the metrics the server really exports: the whole app in
this process with a trained model, tracing on (so the per-stage histogram has samples) and a
monitoring check done (so the model gauges do), its /metrics read with an admin's key. Every
metric a panel or a variable names must be a series there (a histogram as its _bucket, _count or
_sum, a counter with its _total), and every label a query filters or groups by must be one of
that series' labels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mlgate.api.app import create_app
from mlgate.cli.main import app as cli
from mlgate.sources import demo
from mlgate.tracing import setup
from tests.conftest import admin_token, make_services

pytestmark = pytest.mark.in_process  # the whole app, in this process: part of the fast tier

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json"
# PromQL words that look like names: keywords, and the clauses that are followed by labels.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target (rows' nested panels too) and query variable;
    `label_values(expr, label)` gives its expr."""
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel['title']!r}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            values = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text)
            found.append((f"variable {variable['name']!r}", values.group(1) if values else text))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping clauses, variables, numbers and function names are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(GROUPING, " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group(0).lower() in KEYWORDS:
            continue  # a function, an aggregation or an operator
        names.add(match.group(0))
    return names


def label_names(expr: str) -> set[str]:
    """The labels an expression matches on or groups by."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    for grouped in re.findall(GROUPING, expr):
        labels |= {label.strip() for label in grouped.split(",") if label.strip()}
    return labels


def missing(dashboard: dict[str, Any], exported: dict[str, set[str]]) -> list[str]:
    """What the dashboard names that `exported` (series name: its labels) does not have."""
    problems = []
    for where, expr in queries(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric in {expr!r}")
        unknown = names - set(exported)
        for name in sorted(unknown):
            problems.append(f"{where}: {name} is not exported")
        if unknown or not names:
            continue  # its labels cannot be judged
        known = set().union(*(exported[n] for n in names))
        for label in sorted(label_names(expr) - known):
            problems.append(f"{where}: no label {label!r} on {sorted(names)}")
    return problems


def test_the_extractor_reads_names_and_labels_out_of_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (route, le) (rate(mlgate_http_request_duration_seconds"
        '_bucket{route!="/metrics", status=~"5.."}[$__rate_interval]))) / on (route) '
        "group_left sum without (pod) (up offset 5m) > bool 1e3 and ignoring(x) node:load1"
    )
    assert metric_names(expr) == {"mlgate_http_request_duration_seconds_bucket", "up", "node:load1"}
    assert label_names(expr) == {"route", "le", "status", "pod", "x"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The series of a server that trained a model, answered predictions (traced) and
    feedback, and checked the model: {series name: its labels}, and the OpenMetrics text."""
    home = tmp_path_factory.mktemp("dashboard") / "home"
    services = make_services(home)
    database = home.parent / "churn.db"
    frame = demo.churn_frame(n_rows=300)
    demo.write_sqlite(database, frame)
    runner = CliRunner()
    for args in (
        ["sources", "add", "demo", f"sqlite:///{database}"],
        ["train", "churn", "--source", "demo", "--table", demo.TABLE, "--target", demo.TARGET,
         "--drop", demo.ID_COLUMN, "--algorithm", "decision_tree"],
    ):  # fmt: skip
        result = runner.invoke(cli, args, obj=services)
        assert result.exit_code == 0, result.output
    admin = {
        "Authorization": f"Bearer {admin_token(services, 'predict', 'read', 'train', 'admin')}"
    }
    rows = json.loads(frame.drop(columns=[demo.ID_COLUMN, demo.TARGET]).head(40).to_json(
        orient="records"))  # fmt: skip
    setup.install(InMemorySpanExporter(), ALWAYS_ON)
    try:
        with TestClient(create_app(services)) as client:
            settings = {"sample_rate": 1.0, "min_rows": 10}
            configured = client.put("/v1/models/churn/monitoring/settings", json=settings,
                                    headers=admin)  # fmt: skip
            assert configured.status_code == 200, configured.text
            answer = client.post("/v1/models/churn/predict", json={"rows": rows},
                                 headers=admin | {"X-Request-Id": "dashboard-0001"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert client.post("/v1/models/nope/predict", json={"rows": rows},
                               headers=admin).status_code == 404  # fmt: skip
            services.recorder.flush()
            labels = {"request_id": "dashboard-0001", "labels": answer.json()["predictions"]}
            fed = client.post("/v1/models/churn/feedback", json={"feedback": [labels]},
                              headers=admin)  # fmt: skip
            assert fed.status_code == 200, fed.text
            checked = client.post("/v1/models/churn/monitoring/check", headers=admin)
            assert checked.status_code == 200, checked.text
            text = client.get("/metrics", headers=admin)
            assert text.status_code == 200, text.text
            rich = client.get(
                "/metrics", headers=admin | {"Accept": "application/openmetrics-text"}
            )
    finally:
        setup.reset()
        services.close()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text.text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    yield {"series": series, "openmetrics": rich.text}


def test_every_metric_and_label_the_dashboard_names_is_exported(exported: dict[str, Any]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = exported["series"]
    assert missing(dashboard, series) == []
    # the dashboard covers each of mlgate's own families: none left out by accident
    used = set().union(*(metric_names(expr) for _, expr in queries(dashboard)))
    ours = {name for name in series if name.startswith("mlgate_") and not name.endswith("_created")}
    bases = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    unused = {n for n in ours if re.sub(r"_(bucket|count|sum|total)$", "", n) not in bases}
    assert unused <= {"mlgate_model_live_rmse"}, unused  # a regressor's; this model classifies


def test_a_metric_the_server_does_not_export_is_caught(exported: dict[str, Any]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    series = exported["series"]
    # the base name of a histogram is no series: only its _bucket, _count and _sum are
    assert "mlgate_stage_duration_seconds" not in series
    target = dashboard["panels"][1]["targets"][0]
    target["expr"] = target["expr"].replace(
        "mlgate_http_requests_total", "mlgate_http_request_duration_seconds"
    )
    dashboard["panels"][1]["targets"].append(
        {"refId": "Z", "expr": "sum by (shard) (mlgate_predictions_total)"}
    )
    where = f"panel {dashboard['panels'][1]['title']!r}"
    assert missing(dashboard, series) == [
        f"{where}: mlgate_http_request_duration_seconds is not exported",
        f"{where}: no label 'shard' on ['mlgate_predictions_total']",
    ]


def test_the_panels_use_the_variables_and_the_latency_shows_exemplars(
    exported: dict[str, Any],
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"model", "stage"} <= set(variables)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            if re.search(r"mlgate_(predict|stage|model_)", target["expr"]):
                assert 'model=~"$model"' in target["expr"], panel["title"]
    latency = next(p for p in panels if "mlgate_http_request_duration" in json.dumps(p))
    quantiles = {re.search(r"histogram_quantile\(([\d.]+)", t["expr"]).group(1)  # type: ignore[union-attr]
                 for t in latency["targets"]}  # fmt: skip
    assert quantiles == {"0.5", "0.95", "0.99"}
    assert all(t.get("exemplar") is True for t in latency["targets"])
    # ...and the server gives them: a traced call's id on the latency and per-stage buckets
    families = {f.name: f for f in openmetrics(exported["openmetrics"])}
    for family in ("mlgate_http_request_duration_seconds", "mlgate_stage_duration_seconds"):
        exemplars = [s.exemplar for s in families[family].samples if s.exemplar is not None]
        assert exemplars and all(re.fullmatch(r"[0-9a-f]{32}", e.labels["trace_id"])
                                 for e in exemplars), family  # fmt: skip
