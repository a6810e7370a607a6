"""The last checks as Prometheus gauges, appended to /metrics (read from the database, so every
replica and worker reports the same values)."""

from __future__ import annotations

from collections.abc import Sequence

from mlgate.monitoring.model import CheckResult

_FAMILIES = {
    "mlgate_model_alert": "1 when the model is in that state at its last check",
    "mlgate_model_drift_psi": "Population stability index of a feature at the last check",
    "mlgate_model_prediction_psi": "Population stability index of the predictions",
    "mlgate_model_live_accuracy": "Accuracy from feedback labels in the check's window",
    "mlgate_model_live_rmse": "RMSE from feedback labels in the check's window",
    "mlgate_model_logged_rows": "Logged rows in the check's window",
}


def exposition(checks: Sequence[CheckResult]) -> bytes:
    samples: dict[str, list[str]] = {name: [] for name in _FAMILIES}
    for check in checks:
        states = set(check.state.split("+"))
        for state in ("ok", "drifting", "degraded"):
            value = 1 if state in states else 0
            samples["mlgate_model_alert"].append(_line(
                "mlgate_model_alert", {"model": check.model, "state": state}, value))  # fmt: skip
        for number, summary in (check.details.get("versions") or {}).items():
            labels = {"model": check.model, "version": str(number)}
            samples["mlgate_model_logged_rows"].append(
                _line("mlgate_model_logged_rows", labels, summary.get("rows", 0))
            )
            for feature, psi in (summary.get("psi") or {}).items():
                samples["mlgate_model_drift_psi"].append(
                    _line("mlgate_model_drift_psi", {**labels, "feature": feature}, psi)
                )
            for key, family in (("prediction_psi", "mlgate_model_prediction_psi"),
                                ("accuracy", "mlgate_model_live_accuracy"),
                                ("rmse", "mlgate_model_live_rmse")):  # fmt: skip
                if summary.get(key) is not None:
                    samples[family].append(_line(family, labels, summary[key]))
    out = []
    for name, help_text in _FAMILIES.items():
        if samples[name]:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return ("\n".join(out) + "\n").encode() if out else b""


def _line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {float(value)!r}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
