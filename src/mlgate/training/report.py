"""The report stored with every version: plots and tables that show what is behind the metrics.

`build_report` returns the report's data (kept in the metadata database) and a self-contained
HTML page with the plots embedded as PNG (kept beside the model in the artifact store).
"""

from __future__ import annotations

import base64
import html
import io
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlgate.columns import Column
from mlgate.errors import Conflict
from mlgate.registry.model import Task
from mlgate.training import contributions, explain, inference
from mlgate.training.evaluate import Evaluation, Outputs, metrics_heading
from mlgate.training.undefined import (
    is_defined,
    metric_rows,
    stated,
    stated_field,
    stated_optional,
    stated_or_blank,
    stated_range,
)

MAX_ROWS_FOR_LEARNING_CURVE = 2_000
MIN_ROWS_FOR_LEARNING_CURVE = 30
VERSION_PLACEHOLDER = "<!--mlgate:version-->"
PLOT_DPI = 110  # sharp at the width the dashboard shows a plot (was 80: small and soft)


@dataclass(frozen=True)
class ReportInputs:
    model_name: str
    algorithm: str
    task: Task
    target: str
    pipeline: Any
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    outputs: Outputs
    evaluation: Evaluation
    classes: tuple[Any, ...] | None
    coefficients: bool  # the algorithm has a statsmodels twin
    notes: tuple[str, ...]
    lineage: dict[str, Any]
    trained_at: datetime
    seed: int
    cv: dict[str, tuple[float, float]] = field(default_factory=dict)  # k-fold (mean, sd)
    standard_errors: str = "classical"  # of the coefficient table: "classical" or "hc3"
    columns: tuple[Column, ...] = ()  # the input schema: contributions are by these columns
    refits: bool = True  # False for a model trained elsewhere: no learning curve


def build_report(inputs: ReportInputs) -> tuple[dict[str, Any], bytes]:
    """The report's data and its HTML page. What the libraries warn about while it is drawn
    (a metric undefined on a tiny fold, say) becomes a note in it, never noise on a terminal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, plots = _contents(inputs)
    said = dict.fromkeys(_plain(str(w.message)) for w in caught if str(w.message).strip())
    data["notes"] += [f"While drawing the report: {message}" for message in list(said)[:3]]
    if inputs.refits and len(inputs.X_train) < MIN_ROWS_FOR_LEARNING_CURVE:
        data["notes"].append(
            f"No learning curve: {len(inputs.X_train)} training rows are too few to split "
            f"into growing shares (at least {MIN_ROWS_FOR_LEARNING_CURVE} are needed)."
        )
    return data, _html(inputs, data, plots).encode()


def _plain(message: str) -> str:
    """A library's warning as one plain sentence (its first line, without a trailing colon)."""
    return message.strip().splitlines()[0].rstrip(": ").strip()


def _contents(inputs: ReportInputs) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {"evaluation": inputs.evaluation.to_json(), "notes": list(inputs.notes)}
    data["importance"] = explain.importances(
        inputs.task, inputs.pipeline, inputs.X_test, inputs.y_test, inputs.seed
    )
    residuals = None
    if inputs.coefficients:
        found = inference.infer(
            inputs.task, inputs.pipeline, inputs.X_train, inputs.y_train, inputs.classes,
            se=inputs.standard_errors,
        )  # fmt: skip
        if found is not None:
            data["inference"] = found.to_json()
            data["coefficients"] = data["inference"]["terms"]
            data["reading"] = inference.reading(found, inputs.target, inputs.classes)
            data["warnings"] = found.warnings
            residuals = found.residuals
    history = getattr(inputs.pipeline[-1], "history_", None)
    if history:  # a network's epochs: losses, learning rate, the epoch kept
        data["training_history"] = history
    terms = explain.indicative_terms(inputs.pipeline, inputs.classes)
    if terms:  # naive Bayes on text: the words that point to each class
        data["indicative_terms"] = {k: [[w, v] for w, v in ws] for k, ws in terms.items()}
    plots, data["learning_curve"] = _plots(inputs, data["importance"])
    if data["learning_curve"] is None:
        del data["learning_curve"]
    if inputs.columns and len(inputs.X_test):
        try:
            data["contributions"], more = contributions.global_view(
                ref=inputs.model_name, task=inputs.task, algorithm=inputs.algorithm,
                columns=inputs.columns, classes=inputs.classes, pipeline=inputs.pipeline,
                X_train=inputs.X_train, X_test=inputs.X_test, png=png,
            )  # fmt: skip
            plots.update(more)
        except Conflict as exc:  # features that cannot be traced to columns
            data["notes"].append(f"No contributions: {exc}")
    if terms:
        plots["indicative words"] = _indicative_words(terms)
    if residuals is not None:
        plots["normal Q-Q plot of the residuals"] = _qq_plot(residuals)
    data["plots"] = sorted(plots)
    data["figures"] = [
        {"kind": kind_of(title), "title": title, "caption": _caption(inputs, data, title)}
        for title in plots
    ]
    return data, plots


def _plots(
    inputs: ReportInputs, importance: dict[str, dict[str, float]]
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """The plots by title, and what the learning curve was drawn on (None without one)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    out: dict[str, str] = {}
    y = inputs.y_test.to_numpy()
    pred = inputs.outputs.predictions
    if inputs.task == "classification":
        labels = [str(c) for c in inputs.classes or ()]
        proba = inputs.outputs.probabilities
        assert proba is not None
        fig, ax = plt.subplots(figsize=(4.5, 4))
        matrix = confusion_matrix(y, pred, labels=range(len(labels)))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center")
        ax.set(
            xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true"
        )
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
        out["confusion matrix"] = png(fig)
        fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 4))
        for k, label in enumerate(labels):
            if len(labels) == 2 and k == 0:
                continue
            truth = y == k
            if truth.all() or not truth.any():
                continue
            fpr, tpr, _ = roc_curve(truth, proba[:, k])
            roc.plot(fpr, tpr, label=label)
            precision, recall, _ = precision_recall_curve(truth, proba[:, k])
            pr.plot(recall, precision, label=label)
        roc.plot([0, 1], [0, 1], "k:", lw=1)
        roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
        roc.legend(fontsize=8)
        out["ROC and precision-recall curves"] = png(fig)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        positive = 1 if len(labels) == 2 else int(np.argmax(np.bincount(y)))
        frac, mean = calibration_curve(y == positive, proba[:, positive], n_bins=10)
        ax.plot(mean, frac, "o-", label=labels[positive])
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(xlabel="predicted probability", ylabel="observed frequency", title="calibration")
        ax.legend(fontsize=8)
        out["calibration curve"] = png(fig)
    else:
        fig, (residuals, fitted) = plt.subplots(1, 2, figsize=(9, 4))
        residuals.scatter(pred, y - pred, s=8, alpha=0.6)
        residuals.axhline(0, color="k", lw=1)
        residuals.set(xlabel="predicted", ylabel="residual (true - predicted)", title="residuals")
        fitted.scatter(y, pred, s=8, alpha=0.6)
        low, high = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        fitted.plot([low, high], [low, high], "k:", lw=1)
        fitted.set(xlabel="true", ylabel="predicted", title="predicted vs true")
        out["residual plot"] = png(fig)
    for kind, values in importance.items():
        top = sorted(values.items(), key=lambda kv: abs(kv[1]), reverse=True)[:20][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1))
        ax.barh([k for k, _ in top], [v for _, v in top])
        ax.set(title=f"{kind} importance", xlabel="importance")
        out[f"{kind} importance"] = png(fig)
    # A learning curve refits the model: not for one trained elsewhere, nor on a few rows.
    curve = None
    if inputs.refits and len(inputs.X_train) >= MIN_ROWS_FOR_LEARNING_CURVE:
        out["learning curve"], curve = _learning_curve(inputs, plt)
    history = getattr(inputs.pipeline[-1], "history_", None)
    if history:
        out["loss curve"] = _loss_curve(history, plt)
    return out, curve


def _indicative_words(terms: dict[str, list[tuple[str, float]]]) -> str:
    """One panel per class: the terms that raise its score most against the other classes."""
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3.4), squeeze=False)
    for ax, (label, words) in zip(axes[0], terms.items(), strict=True):
        ax.barh([w for w, _ in words][::-1], [v for _, v in words][::-1])
        ax.set(title=label, xlabel="log-probability lift")
    return png(fig)


def _loss_curve(history: list[dict[str, Any]], plt: Any) -> str:
    """Training and validation loss per epoch, and the epoch whose weights were kept."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(epochs, [h["loss"] for h in history], label="training")
    if any(h.get("val_loss") is not None for h in history):
        ax.plot(epochs, [h.get("val_loss") for h in history], label="validation")
    best = [h["epoch"] for h in history if h.get("best")]
    if best:
        ax.axvline(best[0], color="k", ls=":", lw=1, label=f"kept: epoch {best[0]}")
    ax.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax.legend(fontsize=8)
    return png(fig)


def _qq_plot(residuals: np.ndarray) -> str:
    """The inference fit's residuals, standardized and sorted, against the normal quantiles:
    on the line if they are normal; bent tails say heavier or lighter tails than normal."""
    from matplotlib import pyplot as plt
    from scipy import stats

    ordered = np.sort((residuals - residuals.mean()) / (residuals.std(ddof=1) or 1.0))
    n = len(ordered)
    theoretical = stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))  # Blom
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(theoretical, ordered, s=10)
    low, high = float(theoretical[0]), float(theoretical[-1])
    ax.plot([low, high], [low, high], color="grey", linewidth=1)
    ax.set(xlabel="normal quantiles", ylabel="standardized residuals",
           title="normal Q-Q plot of the residuals")  # fmt: skip
    return png(fig)


def _learning_curve(inputs: ReportInputs, plt: Any) -> tuple[str, dict[str, Any]]:
    """The plot, and what it was drawn on: the training rows only (the holdout stays unseen),
    a random sample of MAX_ROWS_FOR_LEARNING_CURVE of them when there are more, each share
    refitted and scored on the part of those rows it was not fitted on."""
    from sklearn.base import clone
    from sklearn.model_selection import ShuffleSplit, learning_curve

    available = len(inputs.X_train)
    if available > MAX_ROWS_FOR_LEARNING_CURVE:
        picked = np.sort(
            np.random.default_rng(inputs.seed).choice(
                available, MAX_ROWS_FOR_LEARNING_CURVE, replace=False
            )
        )
        X, y = inputs.X_train.iloc[picked], inputs.y_train.iloc[picked]
    else:
        X, y = inputs.X_train, inputs.y_train
    scoring = "accuracy" if inputs.task == "classification" else "r2"
    # A network trains for many epochs: one held-out third rather than three folds keeps its
    # report from costing twelve trainings (its loss per epoch is plotted beside).
    epochs = getattr(inputs.pipeline[-1], "history_", None)
    splits: Any = ShuffleSplit(1, test_size=1 / 3, random_state=inputs.seed) if epochs else 3
    model = clone(inputs.pipeline)
    # A calibrated classifier (the SVMs) fits its estimator once per calibration fold and once
    # more: six fits a point, for probabilities the curve's accuracy does not read. Its points
    # refit the estimator alone (an SVM's learning curve took 9 of a report's 22 s here).
    steps = getattr(model, "steps", None)
    last = steps[-1][1] if steps else None
    uncalibrated = getattr(last, "estimator", None) if _is_calibrated(last) else None
    if steps and uncalibrated is not None:
        model.steps[-1] = (model.steps[-1][0], clone(uncalibrated))
    drawn: dict[str, Any] = {
        "rows": len(X),
        "training_rows": available,
        "subsampled": len(X) < available,
        "split": "a held-out third" if epochs else "3-fold cross-validation",
        "metric": "accuracy" if scoring == "accuracy" else "R²",
    }
    if uncalibrated is not None:
        drawn["uncalibrated"] = type(uncalibrated).__name__
    fig, ax = plt.subplots(figsize=(5, 4))
    try:
        sizes, train, test = learning_curve(
            model,
            X,
            y,
            cv=splits,
            train_sizes=np.linspace(0.2, 1.0, 4),
            scoring=scoring,
            random_state=inputs.seed,
            shuffle=True,
            error_score=np.nan,
        )
    except (ValueError, RuntimeError, TypeError) as exc:  # e.g. a class missing from a fold
        ax.text(0.5, 0.5, f"no learning curve:\n{str(exc)[:80]}", ha="center", wrap=True)
        drawn["failed"] = _plain(str(exc))[:200]
        return png(fig), drawn
    drawn["sizes"] = [int(n) for n in sizes]
    ax.plot(sizes, np.nanmean(train, axis=1), "o-", label="training")
    ax.plot(sizes, np.nanmean(test, axis=1), "o-", label=drawn["split"])
    ax.set(xlabel="training rows", ylabel=drawn["metric"], title="learning curve")
    ax.legend(fontsize=8)
    return png(fig), drawn


def _is_calibrated(step: Any) -> bool:
    from sklearn.calibration import CalibratedClassifierCV

    return isinstance(step, CalibratedClassifierCV)


def kind_of(title: str) -> str:
    """A plot's kind: the key that pairs it across versions (compare), whatever its title
    says. Reports have always written it as the figure's id, so old versions pair too."""
    return title.replace(" ", "-")


def learning_curve_caption(drawn: Mapping[str, Any]) -> str:
    """What the learning curve shows and on which rows, in one sentence."""
    rows, available = drawn["rows"], drawn["training_rows"]
    on = (
        f"a random sample of {rows:,} of the {available:,} training rows"
        if drawn.get("subsampled")
        else f"all {rows:,} training rows"
    )
    scored = (
        "each share scored on the third of those rows it was not fitted on"
        if drawn["split"] == "a held-out third"
        else "each share scored by 3-fold cross-validation within those rows"
    )
    metric = drawn["metric"][:1].upper() + drawn["metric"][1:]
    sizes = drawn.get("sizes") or []
    shares = f" ({sizes[0]:,} to {sizes[-1]:,} rows)" if sizes else ""
    said = (
        f"{metric} on the rows fitted (training) and on unseen rows ({drawn['split']}) "
        f"as the model is refitted on growing shares{shares} of {on}; {scored}. The holdout "
        "rows are not used."
    )
    if drawn.get("uncalibrated"):
        said += (
            f" The refits are of the {drawn['uncalibrated']} alone: the served model also "
            "calibrates its probabilities, which costs five more fits a point."
        )
    if drawn.get("failed"):
        said += f" It could not be drawn: {drawn['failed']}."
    return said


def _caption(inputs: ReportInputs, data: Mapping[str, Any], title: str) -> str:
    """What a plot shows and on what data."""
    test, train = f"{len(inputs.X_test):,}", f"{len(inputs.X_train):,}"
    positive = ""
    if inputs.classes:
        labels = [str(c) for c in inputs.classes]
        y = inputs.y_test.to_numpy()
        k = 1 if len(labels) == 2 else int(np.argmax(np.bincount(y, minlength=len(labels))))
        positive = labels[k] if k < len(labels) else ""
    found = data.get("contributions") or {}
    if title == "confusion matrix":
        return (
            f"The {test} holdout rows counted by true class (rows) and predicted class "
            "(columns): the diagonal is what the model got right."
        )
    if title == "ROC and precision-recall curves":
        against = (
            f"class {positive} against the other"
            if len(inputs.classes or ()) == 2
            else "each class against the rest"
        )
        return (
            f"The predicted probabilities of the {test} holdout rows, {against}: true against "
            "false positive rate (left), precision against recall (right), as the threshold moves."
        )
    if title == "calibration curve":
        return (
            f"The predicted probability of class {positive} against how often it was the truth, "
            f"in ten bins over the {test} holdout rows: on the dotted line, the probabilities "
            "mean what they say."
        )
    if title == "residual plot":
        return (
            f"The {test} holdout rows: the residual (true − predicted) against the prediction "
            "(left) and the prediction against the truth (right); the dotted line is perfect."
        )
    if title == "permutation importance":
        shown = min(len(inputs.X_test), explain.MAX_ROWS_FOR_IMPORTANCE)
        score = "accuracy" if inputs.task == "classification" else "R²"
        on = f"the {test}" if shown == len(inputs.X_test) else f"{shown:,} of the {test}"
        return (
            f"How much {score} drops when one column's values are shuffled (mean of 5 shuffles), "
            f"on {on} holdout rows; the 20 largest."
        )
    if title == "native importance":
        return (
            f"The model's own importance of each feature (after preprocessing), from its fit on "
            f"the {train} training rows; the 20 largest."
        )
    if title == "learning curve" and data.get("learning_curve"):
        return learning_curve_caption(data["learning_curve"])
    if title == "loss curve":
        return (
            f"The network's loss per epoch on its training rows and on its validation rows, "
            f"within the {train} training rows; the dotted line marks the epoch whose weights "
            "were kept."
        )
    if title == "indicative words":
        return (
            f"For each class, the words that raise its score most against the other classes "
            f"(log-probability lift), from the fit on the {train} training rows."
        )
    if title == "normal Q-Q plot of the residuals":
        return (
            f"The coefficient fit's standardized residuals on the {train} training rows against "
            "normal quantiles: on the line if they are normal; bent ends mean heavier or lighter "
            "tails."
        )
    if title == "contributions: summary" and found:
        return (
            f"Each column's contribution ({found['scale']}) to each of {found['rows']:,} holdout "
            "rows, one dot a row, coloured by the column's value (grey: missing)."
        )
    if title.startswith("contributions: ") and found:
        column = title.removeprefix("contributions: ")
        return (
            f"{column}'s value against its contribution ({found['scale']}) over "
            f"{found['rows']:,} holdout rows."
        )
    return f"{title}, from the fit on {train} training rows and its {test} holdout rows."


# Reports quote the attributes either way (the forecasters' page uses double quotes).
_EMBEDDED = re.compile(
    r"<img alt=(['\"])(.*?)\1 src=['\"]data:image/png;base64,([A-Za-z0-9+/=]+)['\"]>"
)


def plot_titles(page: bytes) -> list[str]:
    """The titles of the plots embedded in a report page, in order."""
    return [html.unescape(title) for _, title, _ in _EMBEDDED.findall(page.decode())]


def plot_files(page: bytes) -> dict[str, bytes]:
    """The PNG plots embedded in a report page (as `_html` writes them), by a file name made
    from each title: "ROC and precision-recall curves" -> roc-and-precision-recall-curves.png."""
    return {
        re.sub(r"[^a-z0-9]+", "-", html.unescape(title).lower()).strip("-") + ".png": (
            base64.b64decode(data)
        )
        for _, title, data in _EMBEDDED.findall(page.decode())
    }


def png(fig: Any, *, tight: bool = True) -> str:
    """The figure as base64 PNG, for embedding; closes it."""
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    if tight:
        fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _html(inputs: ReportInputs, data: dict[str, Any], plots: dict[str, str]) -> str:
    e = html.escape
    evaluation = data["evaluation"]
    rows = "".join(
        f"<tr><td>{e(r['name'])}</td><td>{e(stated(r['value'], '.4f', r['reason']))}</td>"
        f"<td>{_interval(r['interval'])}</td>"
        f"<td>{e(stated_or_blank(r['baseline'], '.4g', r['reason']))}</td>"
        + (f"<td>{_mean_sd(inputs.cv.get(r['name']))}</td>" if inputs.cv else "")
        + "</tr>"
        for r in metric_rows(evaluation["metrics"], evaluation)
    )
    cv_header = "<th>k-fold CV (mean ± sd)</th>" if inputs.cv else ""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(inputs.model_name)} {VERSION_PLACEHOLDER} report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#222}table{border-collapse:collapse;margin:1rem 0}"
        "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
        "figure{margin:1.5rem 0}.caption{color:#555;font-size:.9rem;max-width:45rem}"
        ".warning{background:#fff4e5;border-left:4px solid #e8a33d;"
        "padding:.5rem .8rem}</style></head><body>",
        f"<h1>{e(inputs.model_name)} {VERSION_PLACEHOLDER}</h1>",
        f"<p>{e(inputs.algorithm)} ({e(inputs.task)} of <b>{e(inputs.target)}</b>), trained "
        f"{inputs.trained_at:%Y-%m-%d %H:%M} UTC on {inputs.lineage.get('n_rows', '?')} rows "
        f"from {e(str(inputs.lineage.get('source_name')))} "
        f"(data sha256 {e(str(inputs.lineage.get('data_sha256', ''))[:16])}…).</p>",
        *(f"<p class='warning'><b>Warning:</b> {e(w)}</p>" for w in data.get("warnings", [])),
        f"<h2>{e(metrics_heading(evaluation))}</h2>",
        "<table><tr><th>metric</th><th>value</th><th>95% bootstrap interval</th>"
        f"<th>baseline</th>{cv_header}</tr>{rows}</table>",
        f"<p>Baseline: {e(evaluation['baseline_kind'])}.</p>",
    ]
    if data["notes"]:
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in data["notes"]) + "</ul>")
    if data.get("inference"):
        parts.extend(_inference_html(data["inference"], data.get("reading", [])))
    if data.get("indicative_terms"):
        parts.append("<h2>Words that point to each class</h2><ul>")
        for label, words in data["indicative_terms"].items():
            listed = ", ".join(e(str(w)) for w, _ in words)
            parts.append(f"<li><b>{e(label)}</b>: {listed}</li>")
        parts.append("</ul>")
    if data.get("contributions"):
        found = data["contributions"]
        parts.append(
            "<h2>What drives the predictions</h2>"
            f"<p>Mean absolute contribution of each column ({e(found['scale'])}) over "
            f"{found['rows']} holdout rows, by {e(found['method'])} "
            f"({e(found['implementation'])}; {e(found['reference'])}). The same values that "
            "a prediction call returns with <code>explain</code>.</p>"
            "<table><tr><th>column</th><th>mean |contribution|</th></tr>"
            + "".join(
                f"<tr><td>{e(k)}</td><td>{_number(v)}</td></tr>"
                for k, v in found["mean_abs"].items()
            )
            + "</table>"
        )
    parts.append("<h2>Plots</h2>")
    captions = {f["title"]: f["caption"] for f in data.get("figures", [])}
    for title, png in plots.items():
        parts.append(
            f"<figure id='{e(kind_of(title))}'><figcaption>{e(title)}</figcaption>"
            f"<img alt='{e(title)}' src='data:image/png;base64,{png}'>"
            f"<p class='caption'>{e(captions.get(title, ''))}</p></figure>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def _interval(value: Any) -> str:
    return "" if not value else f"{stated(value[0], '.4f')} – {stated(value[1], '.4f')}"


def _mean_sd(value: Any) -> str:
    return "" if not value else f"{stated(value[0], '.4f')} ± {stated(value[1], '.4f')}"


def _inference_html(found: dict[str, Any], reading: list[str]) -> list[str]:
    """The coefficient table in the data's units and the fit's diagnostics."""
    e = html.escape
    logistic = found["kind"] != "OLS"
    errors = "heteroscedasticity-robust (HC3)" if found["standard_errors"] == "hc3" else "classical"
    terms = found["terms"]
    served = any(t.get("served") is not None for t in terms)
    multiclass = any(t.get("outcome") for t in terms)
    parts = [
        "<h2>Coefficients</h2>",
        f"<p>statsmodels' unpenalized {e(found['kind'])} fit in the data's units: numbers as "
        "they are (imputed as the model imputes them), each category against its first level; "
        f"{errors} standard errors. Standardized: per standard deviation of the column.</p>",
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in reading) + "</ul>",
    ]
    if served and found.get("served_difference") is not None:
        parts.append(
            "<p>The served model's own coefficients (penalized, in the same units) differ from "
            f"this fit by at most {100 * found['served_difference']:.3g}% of a coefficient.</p>"
        )
    header = ["term"] + (["outcome"] if multiclass else [])
    header += ["estimate", "std. error", "z" if logistic else "t", "p", "95% CI", "standardized"]
    header += (["odds ratio (95% CI)"] if logistic else []) + (["served"] if served else [])
    header += ["VIF"]
    parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
    for t in terms:
        cells = [t["term"]] + ([t["outcome"]] if multiclass else [])
        cells += [stated_field(t, "estimate"), stated_field(t, "std_error"),
                  stated_field(t, "statistic"), stated_field(t, "p_value"),
                  stated_range(t, "low", "high"), stated_optional(t, "standardized")]  # fmt: skip
        if logistic:
            cells.append(_odds(t))
        if served:
            cells.append(stated_optional(t, "served"))
        cells.append(stated_optional(t, "vif"))
        parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table><h3>Diagnostics</h3><table><tr><th>statistic</th><th>value</th></tr>")
    shown = {"condition_number": found["condition_number"], **found["diagnostics"]}
    why = found.get("undefined") or {}
    for name, value in shown.items():
        cell = stated(value, ".4g", why.get(name))
        parts.append(f"<tr><td>{e(name.replace('_', ' '))}</td><td>{e(cell)}</td></tr>")
    parts.append("</table>")
    return parts


def _odds(term: dict[str, Any]) -> str:
    """exp(estimate) (exp(low) – exp(high)), or why it has no value."""
    odds = term.get("odds_ratio") or [None, None, None]
    reason = (term.get("undefined") or {}).get("odds_ratio")
    if not any(is_defined(v) for v in odds):
        return stated(None, reason=reason)
    low, high = (stated(v, ".4g", reason) for v in odds[1:])
    return f"{stated(odds[0], '.4g', reason)} ({low} – {high})"


def _number(value: Any) -> str:
    return "" if value is None else stated(value)
