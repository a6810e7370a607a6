"""The baseline of bench/serve.py: a bare Starlette endpoint that parses the JSON body, builds the
frame and calls the same in-process predictor mlgate uses, with no key, grant, plan, metering or
logging, and the library's own call for trees: it does not compile them (runtime/trees.py), so
that mlgate's compiled trees are measured against the library they replace. Run by uvicorn or
granian with the same options as `mlgate serve`:

    MLGATE_HOME=... BARE_MODEL=xgb uvicorn --factory bench.bare_app:create --port 8001
"""

from __future__ import annotations

import os

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlgate.bootstrap import bootstrap
from mlgate.registry.service import resolve_version
from mlgate.runtime import trees
from mlgate.serving.payloads import table_from_body
from mlgate.settings import Settings


def create() -> Starlette:
    trees.compile_xgboost = lambda *_: None  # the library's own call, whatever the batch
    services = bootstrap(Settings.from_env(dict(os.environ)))
    predictors = {}
    for name in os.environ["BARE_MODELS"].split(","):
        version = resolve_version(services.uow(), name, None)
        predictors[name] = (version, services.predictors.get(version))

    async def predict(request: Request) -> Response:
        version, predictor = predictors[request.path_params["name"]]
        body = orjson.loads(await request.body())
        frame = table_from_body(body, version.columns, max_rows=100_000)
        scores = predictor.score(frame)
        answer = {"predictions": scores.predictions, "probabilities": scores.probabilities}
        return Response(orjson.dumps(answer), media_type="application/json")

    return Starlette(routes=[Route("/v1/models/{name}/predict", predict, methods=["POST"])])
