"""Replay before any traffic: a candidate scores the calls the prediction log kept from the
last days, and the answer compares it with what was answered then.

The comparison is the one a shadow would make, on calls that already happened: agreement of
labels (or the mean absolute difference of a regression's predictions), the rows the candidate
could not score and why, the test on the labels fed back since (paired: the same rows), and what
the bill would have been. The prediction log holds the sampled calls only (the model's sample
rate), without the columns it excludes; a call missing a column the candidate needs cannot be
replayed and is counted as such. The bill is each consumer's rows at the per-1,000 price of its
plan now, for the rows answered then and for the rows the candidate would have answered
(a call it fails is not billed); included quotas and overage prices are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from mlgate.errors import Conflict, InvalidInput, MlgateError, NotFound
from mlgate.monitoring.model import LoggedPrediction
from mlgate.registry.model import ModelVersion, same_label
from mlgate.rollouts import sequential
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import rows_to_table
from mlgate.uow import UnitOfWork

MAX_ROWS = 200_000  # logged rows one replay scores
Progress = Callable[[int, int], None]  # (requests done, requests in all)


def replay(
    uow: UnitOfWork,
    predictors: PredictorCache,
    model: str,
    candidate: int,
    *,
    days: float,
    now: datetime,
    alpha: float = 0.05,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score version `candidate` on the model's logged calls of the last `days` days."""
    if not 0 < days <= 90:
        raise InvalidInput("days must be above 0 and at most 90 (the log's window)")
    since = now - timedelta(days=days)
    with uow:
        version = uow.models.get_version(model, candidate)
        if uow.models.get(model) is None:
            raise NotFound(f"no model named {model!r}")
        if version is None:
            raise NotFound(f"model {model!r} has no version {candidate}")
        logged = [e for e in uow.monitoring.logged(model, since, now) if e.version != candidate]
        labels = uow.monitoring.labels(sorted({e.request_id for e in logged}))
        prices = _prices(uow, {e.account for e in logged})
    if version.archived_at is not None:
        raise Conflict(f"{version.ref} is archived and no longer served")
    if version.task not in ("classification", "regression"):
        raise Conflict(f"{version.ref} is a {version.task} model; a replay scores rows")
    total_rows = sum(len(e.predictions) for e in logged)
    if total_rows > MAX_ROWS:
        raise InvalidInput(
            f"the last {days:g} days logged {total_rows:,} rows; a replay scores at most "
            f"{MAX_ROWS:,}: ask for fewer days"
        )
    by_label = {(label.request_id, label.row): label.label for label in labels}
    regression = version.task == "regression"
    scorer = predictors.get(version)
    compared = agreed = 0
    difference = 0.0
    skipped: dict[str, int] = defaultdict(int)
    mine: list[float] = []
    theirs: list[float] = []
    bill: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # rows then, rows by the candidate
    versions: dict[int, int] = defaultdict(int)
    for done, entry in enumerate(logged, start=1):
        bill[entry.account][0] += len(entry.predictions)
        versions[entry.version] += 1
        answered = _score(scorer, version, entry)
        if isinstance(answered, str):
            skipped[answered] += 1
        else:
            bill[entry.account][1] += len(answered)
            compared += len(answered)
            for row, (then, now_) in enumerate(zip(entry.predictions, answered, strict=True)):
                if regression:
                    difference += abs(float(then) - float(now_))
                else:
                    agreed += same_label(then, now_)
                truth = by_label.get((entry.request_id, row))
                if truth is not None:
                    mine.append(_loss(truth, then, regression))
                    theirs.append(_loss(truth, now_, regression))
        if progress is not None:
            progress(done, len(logged))
    test = sequential.paired(np.asarray(mine), np.asarray(theirs), alpha=alpha)
    return {
        "model": model,
        "candidate": candidate,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "logged_calls": len(logged),
        "logged_rows": total_rows,
        "answered_by": {f"v{v}": n for v, n in sorted(versions.items())},
        "compared_rows": compared,
        "agreement": None if regression or not compared else agreed / compared,
        "mean_absolute_difference": difference / compared if regression and compared else None,
        "not_replayed": dict(skipped),
        "metric": "absolute error" if regression else "error rate (1 - accuracy)",
        "test": test.to_json(),
        "bill": _bill(bill, prices),
    }


def _score(scorer: Any, version: ModelVersion, entry: LoggedPrediction) -> list[Any] | str:
    """The candidate's predictions for a logged call, or why it could not score it."""
    names = [c.name for c in version.columns]
    missing = [n for n in names if n not in entry.inputs]
    if missing:
        return f"the log lacks column {missing[0]!r} (excluded or unknown then)"
    n = len(entry.predictions)
    records = [{name: entry.inputs[name][i] for name in names} for i in range(n)]
    try:
        table = rows_to_table(records, version.columns, max_rows=max(n, 1))
        return list(scorer.score(table).predictions)
    except MlgateError as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    except Exception as exc:  # the candidate failed on these rows: the caller would have seen it
        return f"the candidate failed: {type(exc).__name__}"


def _loss(truth: Any, predicted: Any, regression: bool) -> float:
    if regression:
        return abs(float(truth) - float(predicted))
    return 0.0 if same_label(truth, predicted) else 1.0


def _prices(uow: UnitOfWork, accounts: set[str]) -> dict[str, Decimal | None]:
    out: dict[str, Decimal | None] = {}
    for account in accounts:
        kind, _, name = account.partition(":")
        price = None
        if kind == "consumer":
            subscriptions = uow.plans.subscriptions(name)
            plan = uow.plans.get(subscriptions[-1].plan) if subscriptions else None
            price = plan.price_per_1k_rows if plan is not None else None
        out[account] = price
    return out


def _bill(rows: dict[str, list[int]], prices: dict[str, Decimal | None]) -> list[dict[str, Any]]:
    out = []
    for account, (then, would) in sorted(rows.items()):
        price = prices.get(account)
        out.append({
            "account": account,
            "rows_then": then,
            "rows_by_candidate": would,
            "price_per_1k_rows": None if price is None else str(price),
            "amount_then": None if price is None else str(_amount(then, price)),
            "amount_by_candidate": None if price is None else str(_amount(would, price)),
        })  # fmt: skip
    return out


def _amount(rows: int, price: Decimal) -> Decimal:
    return (Decimal(rows) * price / 1000).quantize(Decimal("0.01"))
