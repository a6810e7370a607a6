"""What the sync and async clients share: turning inputs into request bodies, answers into
results or typed errors, and when to retry."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from mlgate.client import errors

RETRY_STATUSES = (429,)
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Predictions(Sequence[Any]):
    """The predictions, one per input row in input order (a list-like), with the class
    probabilities where the model gives them. `frame()` gives them as a DataFrame, with the
    input DataFrame's index when that was the input."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    classes: list[Any] | None
    version: int
    index: Any = field(default=None, repr=False)
    request_ids: list[str] = field(default_factory=list)  # one per request sent (feedback)
    # With explain=True: how the rows were explained (method, scale) and a DataFrame of each
    # row's contribution per column, its `base` and `value` (base + contributions), and for
    # classifiers the `class` explained; standard errors as `error_<column>` where sampled.
    explanation: dict[str, Any] | None = None
    explanations: Any = field(default=None, repr=False)
    # The rows with a value outside what the model's training saw, by position in the input
    # (0 = the first row): each a list of {"column", "kind", "value", "seen", "message"}, kind
    # one of outside_range, unseen_category, missing. Empty when every row is within it.
    warnings: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, i: Any) -> Any:
        return self.predictions[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.predictions)

    def frame(self) -> Any:
        import pandas as pd

        data: dict[str, Any] = {"prediction": self.predictions}
        if self.probabilities is not None and self.classes is not None:
            for j, label in enumerate(self.classes):
                data[f"probability_{label}"] = [p[j] for p in self.probabilities]
        return pd.DataFrame(data, index=self.index)


def rows_of(data: Any) -> tuple[list[dict[str, Any]], Any]:
    """Rows as JSON-ready dicts (missing values as null) and the DataFrame index, if any."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        plain = data.astype(object).where(data.notna(), None)
        return [_plain_row(dict(r)) for r in plain.to_dict(orient="records")], data.index
    if isinstance(data, Mapping):
        return [_plain_row(dict(data))], None
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        rows = list(data)
        if all(isinstance(r, Mapping) for r in rows):
            return [_plain_row(dict(r)) for r in rows], None
    raise TypeError("rows must be a pandas DataFrame, a dict, or a list of dicts")


def _plain_row(row: dict[Any, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if hasattr(value, "item") and not isinstance(value, str | bytes):
            value = value.item()  # numpy scalars
        if isinstance(value, float) and value != value:
            value = None
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[str(key)] = value
    return out


def headers(api_key: str | None) -> dict[str, str]:
    from mlgate import __version__

    out = {"user-agent": f"mlgate-python/{__version__}"}
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    return out


def feedback_items(labels: Mapping[str, Any]) -> list[dict[str, Any]]:
    """{request id: a label, or a list of labels for every row of that call} as the body's
    items."""
    return [
        {"request_id": rid, "labels": list(v)} if isinstance(v, list | tuple)
        else {"request_id": rid, "label": v}
        for rid, v in labels.items()
    ]  # fmt: skip


def wait_before_retry(
    error: errors.MlgateError, attempt: int, *, retries: int, on_429: bool, max_wait: float
) -> float | None:
    """Seconds to wait before trying a refused call again, or None to raise it: a 429 whose
    Retry-After is known and short enough, while tries are left."""
    if not (on_429 and isinstance(error, errors.QuotaExceeded) and attempt < retries):
        return None
    wait = error.retry_after
    return wait if wait is not None and wait <= max_wait else None


def model_path(model: str, alias: str | None, version: int | None, action: str) -> str:
    if alias is not None and version is not None:
        raise ValueError("give alias= or version=, not both")
    name = quote(model, safe="")
    if version is not None and action == "predict":
        return f"/v1/models/{name}/versions/{int(version)}/{action}"
    if version is not None:  # generate and forecast take a version as name@N
        return f"/v1/models/{name}@{int(version)}/{action}"
    if alias is not None:
        return f"/v1/models/{name}{quote('@' + alias, safe='@')}/{action}"
    return f"/v1/models/{name}/{action}"


def batches(rows: list[dict[str, Any]], size: int | None) -> list[list[dict[str, Any]]]:
    if not size or len(rows) <= size:
        return [rows]
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def predict_body(rows: list[dict[str, Any]], explain: bool, top: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"rows": rows}
    if explain or top is not None:
        body["explain"] = True if top is None else {"top": top}
    return body


def merge(parts: list[dict[str, Any]], index: Any, request_ids: list[str]) -> Predictions:
    predictions: list[Any] = []
    probabilities: list[list[float]] | None = [] if "probabilities" in parts[0] else None
    explained: list[dict[str, Any]] = []
    warnings: dict[int, list[dict[str, Any]]] = {}
    for part in parts:
        warnings.update(
            (len(predictions) + int(row), found)
            for row, found in (part.get("warnings") or {}).items()
        )  # each request numbers its own rows from 0
        predictions += part["predictions"]
        if probabilities is not None:
            probabilities += part["probabilities"]
        explained += part.get("explanations") or []
    about = parts[0].get("explanation")
    return Predictions(predictions, probabilities, parts[0].get("classes"),
                       int(parts[-1]["version"]), index, request_ids, about,
                       _contributions(explained, index) if about else None,
                       warnings)  # fmt: skip


def _contributions(rows: list[dict[str, Any]], index: Any) -> Any:
    import pandas as pd

    records = []
    for row in rows:
        record = dict(row["contributions"])
        record |= {f"error_{k}": v for k, v in (row.get("errors") or {}).items()}
        record |= {"base": row["base"], "value": row["value"]}
        if "class" in row:
            record["class"] = row["class"]
        records.append(record)
    return pd.DataFrame.from_records(records, index=index)


def error_for(response: httpx.Response) -> errors.MlgateError:
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            problem = {}
    except ValueError:
        problem = {}
    detail = str(problem.get("detail") or response.reason_phrase or "error")
    message = f"{response.status_code} {detail}"
    status = response.status_code
    if status == 429:
        return errors.QuotaExceeded(
            message, status=status, problem=problem, retry_after=retry_after(response)
        )
    kind = errors.BY_STATUS.get(status, errors.ServerError if status >= 500 else errors.MlgateError)
    return kind(message, status=status, problem=problem)


def usage_params(
    month: str | None, consumer: str | None, model: str | None, by: str
) -> dict[str, str]:
    """The usage query: this month (UTC) unless one is named."""
    import datetime as dt

    params = {"month": month or dt.datetime.now(dt.UTC).strftime("%Y-%m"), "by": by}
    params |= {k: v for k, v in (("consumer", consumer), ("model", model)) if v}
    return params


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff(attempt: int, base: float = 0.25, cap: float = 8.0) -> float:
    """Exponential backoff with jitter: ~0.25 s, 0.5 s, 1 s, ... up to `cap`."""
    return float(min(cap, base * 2**attempt) * (0.5 + random.random() / 2))
