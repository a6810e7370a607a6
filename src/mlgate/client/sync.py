"""`Client`: mlgate over HTTP for applications, scripts and notebooks.

from mlgate import Client

with Client("http://localhost:8000", api_key="mlg_…") as mlgate:
    scores = mlgate.predict("churn", rows)            # a list of dicts or a DataFrame
    scores.frame()                                    # aligned with the input's index
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from mlgate.client import core, errors
from mlgate.client.core import Predictions
from mlgate.client.device import device_login, print_code


class Client:
    """`retries`: how many times a call is tried again after a refused (429) or failed
    connection; a 429 waits what its Retry-After says (at most `max_wait` seconds, else the
    QuotaExceeded is raised at once), a failed connection waits with exponential backoff.
    `retry_on_429=False` raises QuotaExceeded at once. `timeout`: seconds per request."""

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
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._retries = retries
        self._retry_on_429 = retry_on_429
        self._max_wait = max_wait
        self._max_rows: dict[str, int] = {}
        self.retried = 0  # how many times calls were tried again (429 or connection)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- signing in ------------------------------------------------------------------------------

    def login_sso(
        self,
        *,
        show: Callable[[dict[str, Any]], None] | None = None,
        minutes: int = 60,
    ) -> dict[str, Any]:
        """Sign in through the server's identity provider without a browser here (the device
        flow): `show` gets the code and the address the user opens on any device (by default
        they are printed); once the user approved, this client calls with the short-lived
        session it got, which is returned too ({token, user, expires_at}). Unauthenticated
        (its `code` access_denied or expired_token) when the provider refused."""
        out = device_login(
            lambda path, body: self._post(path, body), minutes=minutes,
            show=show or print_code,
            expired=lambda message: errors.Unauthenticated(
                message, status=401, problem={"code": "expired_token"}),
        )  # fmt: skip
        self._http.headers["authorization"] = f"Bearer {out['token']}"
        return out

    # -- predictions ----------------------------------------------------------------------------

    def predict(
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
        """Predictions for `rows` (a DataFrame, a list of dicts, or one dict), in their order.
        Rows beyond what one request may carry (the plan's or the server's limit, learnt from
        its answer, or `batch_size`) go in several requests. With `explain` (or `top`, the
        largest contributions kept per row), `.explanations` is a DataFrame of each row's
        contribution per column (see Predictions)."""
        records, index = core.rows_of(rows)
        path = core.model_path(model, alias, version, "predict")
        size = batch_size or self._max_rows.get(model)
        try:
            answers = [
                self._send("POST", path, json=core.predict_body(b, explain, top))
                for b in core.batches(records, size)
            ]
        except errors.PayloadTooLarge as exc:
            if batch_size or not exc.max_rows or exc.max_rows >= len(records):
                raise
            self._max_rows[model] = exc.max_rows
            answers = [
                self._send("POST", path, json=core.predict_body(b, explain, top))
                for b in core.batches(records, exc.max_rows)
            ]
        ids = [a.headers.get("x-request-id", "") for a in answers]
        return core.merge([a.json() for a in answers], index, ids)

    def generate(
        self, model: str, n: int, *, seed: int | None = None, alias: str | None = None,
        version: int | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """`n` synthetic rows from a GAN model."""
        body: dict[str, Any] = {"n": n} if seed is None else {"n": n, "seed": seed}
        rows: list[dict[str, Any]] = self._post(
            core.model_path(model, alias, version, "generate"), body
        )["rows"]
        return rows

    def forecast(
        self, model: str, history: list[float], *, alias: str | None = None,
        version: int | None = None,
    ) -> list[float]:  # fmt: skip
        """The next values of a series from a forecasting (LSTM/GRU) model."""
        path = core.model_path(model, alias, version, "forecast")
        values: list[float] = self._post(path, {"history": list(history)})["forecast"]
        return values

    def feedback(self, model: str, labels: dict[str, Any]) -> dict[str, Any]:
        """Ground truth for earlier calls: {request id: the label, or a list of labels for
        every row of that call}. `Predictions.request_ids` holds the ids of a predict call."""
        items = core.feedback_items(labels)
        return self._post(f"/v1/models/{model}/feedback", {"feedback": items})

    # -- models ---------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get("/v1/models")
        return found

    def model(self, name: str) -> dict[str, Any]:
        """The model (versions, aliases) with the input schema of the version served."""
        detail: dict[str, Any] = self._get(f"/v1/models/{name}")
        detail["schema"] = self._get(f"/v1/models/{name}/schema")
        return detail

    def train(
        self, model: str, *, source: str, target: str = "", table: str | None = None,
        query: str | None = None, algorithm: str = "logistic_regression", **options: Any,
    ) -> Job:  # fmt: skip
        """Start training a new version; `.wait()` on the job for the result."""
        body = {"source": source, "target": target, "algorithm": algorithm, "table": table,
                "query": query, **options}  # fmt: skip
        return Job(self, self._post(f"/v1/models/{model}/train", body))

    def job(self, job_id: str) -> Job:
        return Job(self, self._get(f"/v1/jobs/{job_id}"))

    def promote(
        self, model: str, version: int, alias: str = "production", *, reason: str = "",
        require_better: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        body = {"version": version, "reason": reason, "require_better": require_better}
        return self._post(f"/v1/models/{model}/aliases/{alias}", body)

    def rollback(
        self, model: str, alias: str = "production", *, reason: str = ""
    ) -> dict[str, Any]:
        return self._post(f"/v1/models/{model}/aliases/{alias}/rollback", {"reason": reason})

    def report(self, model: str, version: int) -> dict[str, Any]:
        """A version's report as data: `evaluation` (metrics, intervals, baseline, `method`),
        `notes`, `warnings` and, for linear and logistic models, `inference` (the coefficient
        table in the data's units, standard errors, diagnostics)."""
        found: dict[str, Any] = self._get(f"/v1/models/{model}/versions/{version}/report.json")
        return found

    def compare(self, model: str, a: int, b: int, *, alpha: float = 0.05) -> dict[str, Any]:
        return self._post(f"/v1/models/{model}/compare", {"a": a, "b": b, "alpha": alpha})

    def monitoring(self, model: str, *, by: str = "day", days: int = 7) -> dict[str, Any]:
        found: dict[str, Any] = self._get(
            f"/v1/models/{model}/monitoring", params={"by": by, "days": days}
        )
        return found

    # -- accounts -------------------------------------------------------------------------------

    def keys(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get("/v1/keys")
        return found

    def usage(
        self, month: str | None = None, *, consumer: str | None = None, model: str | None = None,
        by: str = "day",
    ) -> Any:  # fmt: skip
        """Metered usage as a pandas DataFrame (one row per period, account, key, model,
        version and status); `month` is YYYY-MM, this month by default."""
        import pandas as pd

        return pd.DataFrame(self._get("/v1/usage", params=core.usage_params(
            month, consumer, model, by)))  # fmt: skip

    # -- batch jobs ------------------------------------------------------------------------------

    def predict_file(
        self,
        model: str,
        path: str | os.PathLike[str],
        *,
        output: str | os.PathLike[str] | None = None,
        wait: bool = True,
        progress: bool = False,
        timeout: float | None = None,
    ) -> Batch:
        """Score a CSV or Parquet file as a batch job on the server (the file is streamed, not
        read into memory). With `wait`, returns once the job ends (a progress bar with
        `progress=True`) and writes the result, in the file's format, to `output` if given."""
        source = Path(path)
        media = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet"}.get(
            source.suffix.lower()
        )
        if media is None:
            raise ValueError(f"{source.name}: a batch is a .csv or .parquet file")
        with source.open("rb") as handle:
            response = self._http.post(
                f"/v1/models/{quote(model, safe='@')}/batches",
                content=handle,
                headers={"Content-Type": media},
                params={"filename": source.name},
            )
        if not response.is_success:
            raise core.error_for(response)
        batch = Batch(self, response.json())
        if wait:
            batch.wait(progress=progress, timeout=timeout)
            if output is not None:
                batch.download(output)
        return batch

    def batch(self, batch_id: str) -> Batch:
        return Batch(self, self._get(f"/v1/batches/{batch_id}"))

    # -- transport ------------------------------------------------------------------------------

    def _get(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params).json()

    def _post(self, path: str, body: Any) -> dict[str, Any]:
        response = self._send("POST", path, json=body)
        out: dict[str, Any] = response.json() if response.content else {}
        return out

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self._retries:
                    raise errors.ConnectionFailed(f"{method} {path}: {exc}") from exc
                time.sleep(core.backoff(attempt))
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
            time.sleep(wait)
            attempt += 1
            self.retried += 1


class _Tracked:
    """Something the server runs in the background: its last known `data`, `id` and `state`."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def state(self) -> str:
        return str(self.data["state"])

    resource = ""  # where it is read: /v1/jobs/{id} or /v1/batches/{id}

    def refresh(self) -> Self:
        self.data = self._client._get(self.resource.format(id=self.id))
        return self


class Job(_Tracked):
    """A training job: `state`, `progress`, `log`; `.wait()` until it ends."""

    resource = "/v1/jobs/{id}"

    def wait(
        self, *, progress: bool = False, poll: float = 0.5, timeout: float | None = None
    ) -> Job:
        """Poll until the job ends (a rich progress bar with `progress=True`); raises
        MlgateError when it failed or was cancelled, TimeoutError after `timeout` seconds."""
        bar = _Bar() if progress else None
        _poll(self, "job", bar.show if bar else None, bar, poll, timeout)
        return self

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.data.get("result") or {})


class _Bar:
    def __init__(self, what: str = "training", total: float = 1.0) -> None:
        from rich.progress import Progress

        self._progress = Progress(transient=False)
        self._progress.start()
        self._task = self._progress.add_task(what, total=total)

    def rows(self, data: dict[str, Any]) -> None:
        self._progress.update(self._task, completed=float(data.get("rows_done") or 0),
                              description=str(data.get("state")))  # fmt: skip

    def show(self, data: dict[str, Any]) -> None:
        self._progress.update(self._task, completed=float(data.get("progress") or 0.0),
                              description=str(data.get("stage") or data.get("state")))  # fmt: skip

    def close(self) -> None:
        self._progress.stop()


class Batch(_Tracked):
    """A batch job: `state`, `rows_done` of `rows`; `.wait()`, `.download(path)`, `.cancel()`."""

    resource = "/v1/batches/{id}"

    def wait(
        self, *, progress: bool = False, poll: float = 0.5, timeout: float | None = None
    ) -> Batch:
        """Poll until the job ends; raises MlgateError when it failed (a quota reached: how
        far it got) or was cancelled, TimeoutError after `timeout` seconds."""
        bar = _Bar("scoring", total=float(self.data.get("rows") or 1)) if progress else None
        _poll(self, "batch", bar.rows if bar else None, bar, poll, timeout)
        return self

    def download(self, path: str | os.PathLike[str]) -> Path:
        """The result (the rows with their predictions), streamed to `path`."""
        target = Path(path)
        with self._client._http.stream("GET", f"/v1/batches/{self.id}/result") as response:
            if not response.is_success:
                response.read()
                raise core.error_for(response)
            with target.open("wb") as handle:
                for chunk in response.iter_bytes(1 << 20):
                    handle.write(chunk)
        return target

    def cancel(self) -> Batch:
        self.data = self._client._send("DELETE", f"/v1/batches/{self.id}").json()
        return self


def _poll(
    job: _Tracked,
    what: str,
    show: Any,
    bar: _Bar | None,
    poll: float,
    timeout: float | None,
) -> None:
    """Refresh `job` until it ends, showing each state; MlgateError unless it succeeded."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while job.refresh().state not in core.FINISHED:
            if show is not None:
                show(job.data)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{what} {job.id} still {job.state} after {timeout} s")
            time.sleep(poll)
        if show is not None:
            show(job.data)
    finally:
        if bar is not None:
            bar.close()
    if job.state != "succeeded":
        raise errors.MlgateError(f"{what} {job.id} {job.state}: {job.data.get('error') or ''}")
