"""The client's paths name routes the server has: a version of a predict call has its own route;
generate and forecast take a version as name@N (there is no /versions/N/forecast)."""

from __future__ import annotations

import pytest

from mlgate.api.routes import models
from mlgate.client.core import model_path


@pytest.mark.parametrize(
    ("alias", "version", "action", "path"),
    [
        (None, None, "predict", "/v1/models/m%20x/predict"),
        (None, 3, "predict", "/v1/models/m%20x/versions/3/predict"),
        ("staging", None, "predict", "/v1/models/m%20x@staging/predict"),
        (None, 2, "forecast", "/v1/models/m%20x@2/forecast"),
        (None, 2, "generate", "/v1/models/m%20x@2/generate"),
        ("canary", None, "generate", "/v1/models/m%20x@canary/generate"),
    ],
)
def test_paths(alias: str | None, version: int | None, action: str, path: str) -> None:
    assert model_path("m x", alias, version, action) == path


def test_every_action_path_is_a_route_of_the_server() -> None:
    templates = {getattr(r, "path", "") for r in models.router.routes}
    for action in ("predict", "generate", "forecast"):
        assert f"/v1/models/{{name}}/{action}" in templates
    assert "/v1/models/{name}/versions/{version}/predict" in templates
    assert "/v1/models/{name}/versions/{version}/forecast" not in templates
