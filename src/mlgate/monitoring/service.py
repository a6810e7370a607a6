"""Monitoring use cases: settings, the drift and accuracy report, feedback, and checks.

Every window of a report belongs to one version, so its drift is measured against that
version's own training rows (a seeded sample of its snapshot, as the model saw them) and its
prediction drift against the model's predictions on those rows.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlgate.access.audit import audited
from mlgate.errors import FieldError, InvalidInput, NotFound
from mlgate.monitoring import drift, webhook
from mlgate.monitoring.model import CheckResult, Label, LoggedPrediction, MonitorSettings
from mlgate.monitoring.recorder import PredictionRecorder
from mlgate.outbound.client import Outbound
from mlgate.registry.model import ModelVersion, same_label
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform, feature_columns
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.monitoring")
Grouping = Literal["day", "version", "consumer"]
REFERENCE_ROWS = 20_000
MIN_LABELS = 20  # fewer labels in a window: no accuracy verdict
MAX_FEEDBACK = 10_000


class Monitor:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        artifacts: ArtifactStore,
        predictors: PredictorCache,
        clock: Callable[[], datetime],
        recorder: PredictionRecorder,
        *,
        retrain: Callable[[ModelVersion], str] | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self._uow = uow
        self._artifacts = artifacts
        self._predictors = predictors
        self._clock = clock
        self.recorder = recorder
        self._retrain = retrain
        self._outbound = outbound or Outbound()
        self._references: OrderedDict[tuple[str, int], tuple[pd.DataFrame, list[Any]]] = (
            OrderedDict()
        )

    # -- settings -----------------------------------------------------------------------------

    def settings(self, model: str) -> MonitorSettings:
        with self._uow() as uow:
            _model_exists(uow, model)
            return uow.monitoring.settings(model) or MonitorSettings()

    @audited("monitoring.configure", "model")
    def configure(self, model: str, **changes: Any) -> MonitorSettings:
        """Change some settings; the rest stay as they were."""
        with self._uow() as uow:
            _model_exists(uow, model)
            current = uow.monitoring.settings(model) or MonitorSettings()
            if "exclude_columns" in changes and changes["exclude_columns"] is not None:
                changes["exclude_columns"] = tuple(changes["exclude_columns"])
            updated = replace(current, **changes)
            if updated.webhook_url and updated.webhook_url != current.webhook_url:
                self._outbound.check(updated.webhook_url, what="the monitoring webhook")
            uow.monitoring.save_settings(model, updated, self._clock())
            uow.commit()
        self.recorder.forget()
        return updated

    # -- report -------------------------------------------------------------------------------

    def report(
        self,
        model: str,
        *,
        by: Grouping = "day",
        days: int = 7,
        version: int | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        if by not in ("day", "version", "consumer"):
            raise InvalidInput(f"group by day, version or consumer, not {by!r}")
        if not 1 <= days <= 365:
            raise InvalidInput(f"days must be 1 to 365, not {days}")
        until = self._clock()
        since = until - timedelta(days=days)
        with self._uow() as uow:
            _model_exists(uow, model)
            settings = uow.monitoring.settings(model) or MonitorSettings()
            entries = uow.monitoring.logged(model, since, until, version=version, account=account)
            labels = uow.monitoring.labels([e.request_id for e in entries])
        by_label = {(lb.request_id, lb.row): lb.label for lb in labels}
        groups: dict[tuple[int, str], list[LoggedPrediction]] = defaultdict(list)
        for entry in entries:
            key = {"day": entry.at.strftime("%Y-%m-%d"), "version": "all",
                   "consumer": entry.account}[by]  # fmt: skip
            groups[(entry.version, key)].append(entry)
        windows = []
        for (number, key), group in sorted(groups.items()):
            windows.append(self._window(model, number, key, group, by_label, settings))
        return {
            "model": model,
            "by": by,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "settings": settings.public(),
            "windows": windows,
        }

    def _window(
        self,
        model: str,
        number: int,
        key: str,
        entries: list[LoggedPrediction],
        by_label: dict[tuple[str, int], Any],
        settings: MonitorSettings,
    ) -> dict[str, Any]:
        version = resolve_version(self._uow(), model, number, None)
        rows = sum(len(e.predictions) for e in entries)
        window: dict[str, Any] = {
            "version": number, "key": key, "requests": len(entries), "rows": rows,
            "features": {}, "prediction": None, "drifted": [], "verdict": None,
        }  # fmt: skip
        window.update(_live_quality(version, entries, by_label))
        if rows < settings.min_rows:
            window["verdict"] = f"fewer than {settings.min_rows} logged rows: no drift verdict"
            return window
        try:
            reference, reference_predictions = self._reference(version)
        except Exception as exc:  # an imported version without its rows, a missing file
            window["verdict"] = f"no training rows to compare with ({type(exc).__name__})"
            return window
        current = _frame(entries)
        limits = (settings.psi_threshold, settings.p_threshold)
        for column in feature_columns(version.columns):
            if column.name not in current.columns or column.name not in reference.columns:
                continue  # excluded from the log, or free text
            if column.type in ("number", "boolean"):
                result = drift.numeric(
                    reference[column.name].to_numpy(dtype="float64", na_value=np.nan),
                    pd.to_numeric(current[column.name], errors="coerce").to_numpy("float64"),
                )
            elif column.type == "string":
                result = drift.categorical(reference[column.name], current[column.name])
            else:
                continue
            window["features"][column.name] = result.to_json(*limits)
        predicted = [p for e in entries for p in e.predictions]
        if version.task == "regression":
            outcome = drift.numeric(
                np.asarray(reference_predictions, dtype="float64"),
                np.asarray(predicted, dtype="float64"),
            )
        else:
            outcome = drift.categorical(
                pd.Series(reference_predictions, dtype=object), pd.Series(predicted, dtype=object)
            )
        window["prediction"] = outcome.to_json(*limits)
        window["drifted"] = [n for n, f in window["features"].items() if f["drifted"]]
        drifting = bool(window["drifted"]) or window["prediction"]["drifted"]
        window["verdict"] = "drifting" if drifting else "stable"
        return window

    def training_rows(self, version: ModelVersion) -> pd.DataFrame:
        """A seeded sample of `version`'s training rows (at most REFERENCE_ROWS), conformed to
        its columns: what its drift is measured against, read once and cached. Raises NotFound
        for a version stored without its rows (an imported one)."""
        return self._reference(version)[0]

    def _reference(self, version: ModelVersion) -> tuple[pd.DataFrame, list[Any]]:
        key = (version.model_name, version.number)
        if key in self._references:
            self._references.move_to_end(key)
            return self._references[key]
        from mlgate.training.service import read_snapshot

        rows = read_snapshot(self._uow(), self._artifacts, version.model_name, version.number)
        if len(rows) > REFERENCE_ROWS:
            rows = rows.sample(REFERENCE_ROWS, random_state=0)
        frame = conform(rows.reset_index(drop=True), version.columns)
        predictions = list(self._predictors.get(version).score(frame).predictions)
        self._references[key] = (frame, predictions)
        while len(self._references) > 8:
            self._references.popitem(last=False)
        return frame, predictions

    # -- feedback -----------------------------------------------------------------------------

    def feedback(self, model: str, account: str | None, items: Sequence[Label]) -> dict[str, Any]:
        """Store ground-truth labels for logged predictions. `account` None: any request of
        the model (a team member); else only that consumer's own requests."""
        if len(items) > MAX_FEEDBACK:
            raise InvalidInput(f"at most {MAX_FEEDBACK:,} labels per call; send several calls")
        with self._uow() as uow:
            _model_exists(uow, model)
            logged = uow.monitoring.logged_requests(sorted({i.request_id for i in items}))
        versions: dict[int, ModelVersion] = {}
        stored, unmatched = [], []
        for index, item in enumerate(items):
            entry = logged.get(item.request_id)
            if entry is None or entry.model != model or (account and entry.account != account):
                unmatched.append(item.request_id)
                continue
            if not 0 <= item.row < len(entry.predictions):
                raise InvalidInput(
                    f"request {item.request_id} scored {len(entry.predictions)} row(s); "
                    f"row {item.row} is not one of them",
                    errors=[FieldError(f"labels[{index}].row", "out of range")],
                )
            if entry.version not in versions:
                versions[entry.version] = resolve_version(self._uow(), model, entry.version, None)
            stored.append(
                replace(item, label=_label_for(versions[entry.version], item.label, index))
            )
        with self._uow() as uow:
            uow.monitoring.add_labels(model, stored, self._clock())
            uow.commit()
        answer: dict[str, Any] = {"stored": len(stored), "unmatched": sorted(set(unmatched))[:100]}
        if unmatched:
            answer["hint"] = (
                "labels are kept for logged predictions only: the request ids above were not "
                "logged for this model (raise its sample rate to log more), or are not yours"
            )
        return answer

    # -- checks and alerts --------------------------------------------------------------------

    @audited("monitoring.check", "model")
    def check(self, model: str) -> CheckResult:
        """Judge the model over its window, keep the verdict, and on a change of state call the
        webhook and (if asked) train a candidate version."""
        settings = self.settings(model)
        report = self.report(model, by="version", days=settings.window_days)
        drifting, degraded, versions = False, False, {}
        for window in report["windows"]:
            versions[str(window["version"])] = _summary(window)
            drifting |= window["verdict"] == "drifting"
            degraded |= _degraded(window, settings)
        state = "+".join(s for s, on in (("drifting", drifting), ("degraded", degraded)) if on)
        state = state or "ok"
        now = self._clock()
        details: dict[str, Any] = {"versions": versions, "window_days": settings.window_days}
        with self._uow() as uow:
            previous = uow.monitoring.last_check(model)
        result = CheckResult(model, state, now, details)
        # Several processes check the same model: only the one whose write moves the state
        # from what it read tells the webhook (and starts a retrain).
        with self._uow() as uow:
            moved = uow.monitoring.save_check(result, was=previous.state if previous else None)
            uow.commit()
        before = previous.state if previous else "ok"
        if state != before and moved:
            log.warning("model %s is %s (was %s)", model, state, before)
            details["previous"] = before
            if settings.webhook_url and settings.webhook_secret:
                payload = {"event": "mlgate.monitor.state", "model": model, "state": state,
                           "previous": before, "checked_at": now.isoformat(),
                           "versions": versions}  # fmt: skip
                details["webhook"] = webhook.deliver(
                    settings.webhook_url, settings.webhook_secret, payload,
                    outbound=self._outbound,
                )  # fmt: skip
            if settings.retrain and state != "ok" and self._retrain is not None:
                details["retrain_job"] = self._start_retrain(model, report)
            result = CheckResult(model, state, now, details)
            with self._uow() as uow:
                uow.monitoring.save_check(result, was=state)
                uow.commit()
        return result

    def check_all(self) -> list[CheckResult]:
        with self._uow() as uow:
            models = sorted(uow.monitoring.all_settings())
        out = []
        for model in models:
            try:
                out.append(self.check(model))
            except Exception:  # one model's trouble does not stop the others' checks
                log.exception("monitoring check of %s failed", model)
        return out

    def checks(self) -> list[CheckResult]:
        with self._uow() as uow:
            return uow.monitoring.all_checks()

    def _start_retrain(self, model: str, report: dict[str, Any]) -> str | None:
        numbers = [w["version"] for w in report["windows"]]
        if not numbers or self._retrain is None:
            return None
        version = resolve_version(self._uow(), model, max(numbers), None)
        try:
            return self._retrain(version)
        except Exception as exc:
            log.exception("retraining %s failed to start", model)
            return f"not started: {exc}"


def _model_exists(uow: UnitOfWork, model: str) -> None:
    if uow.models.get(model) is None:
        raise NotFound(f"no model named {model!r}")


def _frame(entries: list[LoggedPrediction]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = defaultdict(list)
    names = {n for e in entries for n in e.inputs}
    for entry in entries:
        n = len(entry.predictions)
        for name in names:
            columns[name].extend(entry.inputs.get(name, [None] * n))
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def _label_for(version: ModelVersion, label: Any, index: int) -> Any:
    field = f"labels[{index}].label"
    if version.task == "regression":
        if isinstance(label, bool) or not isinstance(label, int | float) or label != label:
            raise InvalidInput(
                f"{version.ref} predicts numbers; a label must be a number",
                errors=[FieldError(field, "expected a number")],
            )
        return float(label)
    for known in version.classes or ():
        if same_label(known, label):
            return known
    raise InvalidInput(
        f"{label!r} is not one of {version.ref}'s classes "
        f"({', '.join(map(repr, version.classes or ()))})",
        errors=[FieldError(field, "unknown class")],
    )


def _live_quality(
    version: ModelVersion, entries: list[LoggedPrediction], by_label: dict[tuple[str, int], Any]
) -> dict[str, Any]:
    pairs = [
        (by_label[(e.request_id, row)], predicted)
        for e in entries
        for row, predicted in enumerate(e.predictions)
        if (e.request_id, row) in by_label
    ]
    out: dict[str, Any] = {"labelled": len(pairs)}
    if not pairs:
        return out
    if version.task == "regression":
        errors = np.array([float(t) - float(p) for t, p in pairs])
        out["rmse"] = float(np.sqrt(np.mean(errors**2)))
        out["mae"] = float(np.mean(np.abs(errors)))
    else:
        out["accuracy"] = sum(same_label(t, p) for t, p in pairs) / len(pairs)
    return out


def _degraded(window: dict[str, Any], settings: MonitorSettings) -> bool:
    if window.get("labelled", 0) < MIN_LABELS:
        return False
    accuracy, rmse = window.get("accuracy"), window.get("rmse")
    low = settings.min_accuracy
    if low is not None and accuracy is not None and accuracy < low:
        return True
    return settings.max_rmse is not None and rmse is not None and rmse > settings.max_rmse


def _summary(window: dict[str, Any]) -> dict[str, Any]:
    return {
        "rows": window["rows"],
        "verdict": window["verdict"],
        "drifted": window["drifted"],
        "psi": {n: f["psi"] for n, f in window["features"].items()},
        "prediction_psi": (window["prediction"] or {}).get("psi"),
        "labelled": window.get("labelled", 0),
        "accuracy": window.get("accuracy"),
        "rmse": window.get("rmse"),
    }
