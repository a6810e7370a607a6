"""`AsyncClient`: the same calls as `Client`, awaited (for asyncio applications).

async with AsyncClient("http://localhost:8000", api_key="mlg_…") as mlgate:
    scores = await mlgate.predict("churn", rows)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from mlgate.client import core, errors
from mlgate.client.core import Predictions
from mlgate.client.device import device_login_async, print_code


class AsyncClient:
    """See `Client` for the retry and timeout settings."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        retry_on_429: bool = True,
        max_wait: float = 60.0,
    ) -> None:
        headers = core.headers(api_key)
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._retries = retries
        self._retry_on_429 = retry_on_429
        self._max_wait = max_wait
        self._max_rows: dict[str, int] = {}
        self.retried = 0

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def login_sso(
        self,
        *,
        show: Callable[[dict[str, Any]], None] | None = None,
        minutes: int = 60,
    ) -> dict[str, Any]:
        """See `Client.login_sso`: the device flow, awaited."""
        out = await device_login_async(
            self._post, minutes=minutes, show=show or print_code,
            expired=lambda message: errors.Unauthenticated(
                message, status=401, problem={"code": "expired_token"}),
        )  # fmt: skip
        self._http.headers["authorization"] = f"Bearer {out['token']}"
        return out

    async def predict(
        self,
        model: str,
        rows: Any,
        *,
        alias: str | None = None,
        version: int | None = None,
        batch_size: int | None = None,
        explain: bool = False,
        top: int | None = None,
    ) -> Predictions:
        """As `Client.predict`; the batches go one after another."""
        records, index = core.rows_of(rows)
        path = core.model_path(model, alias, version, "predict")
        size = batch_size or self._max_rows.get(model)
        try:
            answers = [
                await self._send("POST", path, json=core.predict_body(b, explain, top))
                for b in core.batches(records, size)
            ]
        except errors.PayloadTooLarge as exc:
            if batch_size or not exc.max_rows or exc.max_rows >= len(records):
                raise
            self._max_rows[model] = exc.max_rows
            answers = [
                await self._send("POST", path, json=core.predict_body(b, explain, top))
                for b in core.batches(records, exc.max_rows)
            ]
        ids = [a.headers.get("x-request-id", "") for a in answers]
        return core.merge([a.json() for a in answers], index, ids)

    async def generate(
        self, model: str, n: int, *, seed: int | None = None, alias: str | None = None,
        version: int | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        body: dict[str, Any] = {"n": n} if seed is None else {"n": n, "seed": seed}
        answer = await self._post(core.model_path(model, alias, version, "generate"), body)
        rows: list[dict[str, Any]] = answer["rows"]
        return rows

    async def forecast(
        self, model: str, history: list[float], *, alias: str | None = None,
        version: int | None = None,
    ) -> list[float]:  # fmt: skip
        path = core.model_path(model, alias, version, "forecast")
        values: list[float] = (await self._post(path, {"history": list(history)}))["forecast"]
        return values

    async def models(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._get("/v1/models")
        return found

    async def model(self, name: str) -> dict[str, Any]:
        detail: dict[str, Any] = await self._get(f"/v1/models/{name}")
        detail["schema"] = await self._get(f"/v1/models/{name}/schema")
        return detail

    async def promote(
        self, model: str, version: int, alias: str = "production", *, reason: str = "",
        require_better: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        body = {"version": version, "reason": reason, "require_better": require_better}
        return await self._post(f"/v1/models/{model}/aliases/{alias}", body)

    async def rollback(
        self, model: str, alias: str = "production", *, reason: str = ""
    ) -> dict[str, Any]:
        return await self._post(f"/v1/models/{model}/aliases/{alias}/rollback", {"reason": reason})

    async def report(self, model: str, version: int) -> dict[str, Any]:
        """A version's report as data (see Client.report)."""
        found: dict[str, Any] = await self._get(
            f"/v1/models/{model}/versions/{version}/report.json"
        )
        return found

    async def compare(self, model: str, a: int, b: int, *, alpha: float = 0.05) -> dict[str, Any]:
        return await self._post(f"/v1/models/{model}/compare", {"a": a, "b": b, "alpha": alpha})

    async def feedback(self, model: str, labels: dict[str, Any]) -> dict[str, Any]:
        items = core.feedback_items(labels)
        return await self._post(f"/v1/models/{model}/feedback", {"feedback": items})

    async def monitoring(self, model: str, *, by: str = "day", days: int = 7) -> dict[str, Any]:
        found: dict[str, Any] = await self._get(
            f"/v1/models/{model}/monitoring", params={"by": by, "days": days}
        )
        return found

    async def keys(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._get("/v1/keys")
        return found

    async def usage(
        self, month: str | None = None, *, consumer: str | None = None, model: str | None = None,
        by: str = "day",
    ) -> Any:  # fmt: skip
        import pandas as pd

        return pd.DataFrame(await self._get("/v1/usage", params=core.usage_params(
            month, consumer, model, by)))  # fmt: skip

    async def train(
        self, model: str, *, source: str, target: str = "", table: str | None = None,
        query: str | None = None, algorithm: str = "logistic_regression", **options: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Start training; the job as the server describes it (`wait_for_job` waits)."""
        body = {"source": source, "target": target, "algorithm": algorithm, "table": table,
                "query": query, **options}  # fmt: skip
        return await self._post(f"/v1/models/{model}/train", body)

    async def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._get(f"/v1/jobs/{job_id}")
        return found

    async def wait_for_job(
        self, job_id: str, *, poll: float = 0.5, timeout: float | None = None
    ) -> dict[str, Any]:
        """The job once it ended; raises MlgateError when it failed, TimeoutError after
        `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while (job := await self.job(job_id))["state"] not in core.FINISHED:
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout} s")
            await asyncio.sleep(poll)
        if job["state"] != "succeeded":
            raise errors.MlgateError(f"job {job_id} {job['state']}: {job.get('error') or ''}")
        return job

    async def _get(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return (await self._send("GET", path, params=params)).json()

    async def _post(self, path: str, body: Any) -> dict[str, Any]:
        response = await self._send("POST", path, json=body)
        out: dict[str, Any] = response.json() if response.content else {}
        return out

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self._retries:
                    raise errors.ConnectionFailed(f"{method} {path}: {exc}") from exc
                await asyncio.sleep(core.backoff(attempt))
                attempt += 1
                self.retried += 1
                continue
            if response.is_success:
                return response
            error = core.error_for(response)
            wait = core.wait_before_retry(
                error, attempt, retries=self._retries, on_429=self._retry_on_429,
                max_wait=self._max_wait,
            )  # fmt: skip
            if wait is None:
                raise error
            await asyncio.sleep(wait)
            attempt += 1
            self.retried += 1
