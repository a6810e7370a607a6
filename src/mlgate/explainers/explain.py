"""Why a prediction: each input column's contribution to one row's output (SHAP values).

The base value plus a row's contributions equals the model's raw output for that row: the
log-odds of the positive class for a binary linear or boosted classifier, the margin (a softmax
logit) of the predicted class for a multiclass one, the probability of the class for trees of
scikit-learn and for every model explained by sampling, and the prediction for regression. The
answer names its scale and its method, and a method is used only where it applies:

- `linear`: exact. coefficient × (value − mean over the training snapshot), per feature the model
  sees, summed back to the column it came from (a category's one-hot features, a datetime's parts).
- `tree_shap`: exact. Path-dependent TreeSHAP, by the library itself for XGBoost
  (`pred_contribs`), LightGBM (`pred_contrib`) and CatBoost (`ShapValues`), and by XGBoost's
  implementation for scikit-learn's trees and forests (explainers/tree_shap.py).
- `sampling`: estimated, for every other model: permutation sampling against stored training
  rows (explainers/sampling.py), with each contribution's standard error and the budget spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.columns import Column
from mlgate.errors import Conflict, NotFound, PayloadTooLarge
from mlgate.explainers import sampling
from mlgate.registry.model import ModelVersion, Task
from mlgate.runtime.switches import Guarded
from mlgate.schema import Table

if TYPE_CHECKING:
    from mlgate.runtime.predictors import Predictor

LINEAR = frozenset({"linear_regression", "ridge", "lasso", "elastic_net", "logistic_regression"})
BOOSTERS = frozenset({"xgboost", "lightgbm", "catboost"})
SCIKIT_TREES = frozenset({"decision_tree", "random_forest"})
TABLES = "mlgate TreeSHAP tables (checked against xgboost)"
MAX_EVALUATIONS = 200_000  # model outputs one sampled explanation may compute
BACKGROUND_ROWS = 1_000  # training rows kept per explained version (means, sampling starts)

REFERENCES = {
    "linear": "exact: coefficient × (value − training mean), summed per input column",
    "tree_shap": "exact: path-dependent TreeSHAP (Lundberg et al., Nature Machine "
    "Intelligence 2, 2020)",
    "sampling": "estimated: permutation sampling with antithetic walks (Štrumbelj & "
    "Kononenko, Knowledge and Information Systems 41, 2014)",
}


@dataclass(frozen=True)
class Explanation:
    method: str  # linear, tree_shap or sampling
    implementation: str  # who computed the values
    scale: str  # what base + contributions add up to
    columns: tuple[str, ...]  # the caller's columns, in the version's order
    base: np.ndarray  # (rows,)
    values: np.ndarray  # (rows, columns)
    explained: list[Any] | None = None  # per row, the class whose output is explained
    errors: np.ndarray | None = None  # (rows, columns): standard errors (sampling)
    budget: dict[str, int] | None = None

    def about(self) -> dict[str, Any]:
        """What every row's explanation shares: method, scale, and for sampling its budget."""
        out: dict[str, Any] = {
            "method": self.method,
            "implementation": self.implementation,
            "scale": self.scale,
            "reference": REFERENCES[self.method],
        }
        if self.budget is not None:
            out["budget"] = self.budget
            out["errors"] = "standard error of each contribution, in `errors`"
        return out

    def rows(self, top: int | None = None) -> list[dict[str, Any]]:
        """One object per row: base, value (= base + contributions) and the contributions by
        column, largest first. With `top`, the `top` largest by absolute value and `other`, the
        sum of the rest, so the sum still holds."""
        values = self.values
        order = np.argsort(-np.abs(values), axis=1, kind="stable")
        kept = order if top is None else order[:, :top]
        names = np.asarray(self.columns, dtype=object)[kept].tolist()
        picked = np.take_along_axis(values, kept, axis=1).tolist()
        rest = None
        if top is not None and values.shape[1] > top:
            rest = np.take_along_axis(values, order[:, top:], axis=1).sum(axis=1).tolist()
        errors = None
        if self.errors is not None:
            errors = np.take_along_axis(self.errors, kept, axis=1).tolist()
        bases, totals = self.base.tolist(), (self.base + values.sum(axis=1)).tolist()
        out = []
        for i, (base, total) in enumerate(zip(bases, totals, strict=True)):
            contributions = dict(zip(names[i], picked[i], strict=True))
            if rest is not None:
                contributions["other"] = rest[i]
            row: dict[str, Any] = {"base": base, "value": total, "contributions": contributions}
            if self.explained is not None:
                row["class"] = self.explained[i]
            if errors is not None:
                row["errors"] = dict(zip(names[i], errors[i], strict=True))
            out.append(row)
        return out

    def matrix(self) -> tuple[list[str], list[list[float]]]:
        """Contributions in the columns' order, then the base: a tensor's names and rows."""
        return [*self.columns, "base"], np.column_stack([self.values, self.base]).tolist()


@dataclass(frozen=True)
class Subject:
    """What an explainer needs to know of a version (a report has it before the version)."""

    ref: str
    task: Task
    algorithm: str
    columns: tuple[Column, ...]
    classes: tuple[Any, ...] | None

    def __post_init__(self) -> None:
        # A booster trained elsewhere is explained as ours are: by its library's TreeSHAP.
        native = self.algorithm.removeprefix("imported-")
        if native != self.algorithm and native in BOOSTERS:
            object.__setattr__(self, "algorithm", native)

    @classmethod
    def of(cls, version: ModelVersion) -> Subject:
        return cls(version.ref, version.task, version.algorithm, version.columns, version.classes)


def explainer_of(predictor: Predictor, background: Callable[[], Table]) -> Explainer:
    """What explains a loaded model's predictions, made once and kept with it. `background`
    reads a sample of its training rows, when a method first needs them."""

    def make() -> Explainer:
        subject = Subject.of(predictor.version)
        return Explainer(subject, predictor.pipeline, predictor.features, background)

    return predictor.attached("explainer", make)


class Explainer:
    """Explains one version's predictions. `features` gives the matrix its model takes;
    `background` a sample of its training rows (read once, when first needed)."""

    def __init__(
        self,
        version: Subject,
        pipeline: Any,
        features: Callable[[Table], Any],
        background: Callable[[], Table],
    ) -> None:
        if version.task not in ("classification", "regression"):
            raise Conflict(
                f"{version.ref} is a {version.task} model; explanations are for models that "
                "score rows"
            )
        self.version = version
        self._pipeline = pipeline
        self._model = pipeline[-1]
        self._features = features
        self._background_source = background
        self._background: Table | None = None
        self._mean: np.ndarray | None = None
        self.columns = tuple(c.name for c in version.columns)
        self.method = _method(version, self._model)
        self._boosters: list[Any] | None = None
        self._tables: Any = None  # explainers/fast_shap.py's tables, False where they do not fit
        # the tables in numpy once checked; the compiled loop once it was found compiled and
        # checked (runtime/switches.py)
        self._numpy: Guarded[tuple[np.ndarray, str]] | None = None
        self._kernel: Guarded[tuple[np.ndarray, str]] | None = None
        self._groups: np.ndarray | None = None

    def prepared(self) -> bool:
        """Its one-time work is done: the training mean read (linear), XGBoost's tables built
        and checked, and the compiled loop checked once it is compiled. Until then a call is
        explained off the event loop (reading a snapshot can take seconds)."""
        if self.method == "linear":
            return self._mean is not None
        if self.method == "tree_shap" and self.version.algorithm == "xgboost":
            if self._tables is None or self._tables is False:
                return self._tables is False
            from mlgate.explainers import shap_kernel

            # the compiled loop, once compiled, is checked against the library before its
            # first use: that call goes to a thread too
            return self._kernel is not None or not shap_kernel.ready()
        return True

    def max_rows(self) -> int | None:
        """Rows one call may explain (sampling has a budget), or None: as many as it scores."""
        if self.method != "sampling":
            return None
        return max(1, MAX_EVALUATIONS // sampling.evaluations_per_row(len(self.columns)))

    def explain(self, rows: Table) -> Explanation:
        limit = self.max_rows()
        if limit is not None and rows.n_rows > limit:
            raise PayloadTooLarge(
                f"{self.version.ref} ({self.version.algorithm}) is explained by sampling, "
                f"{sampling.evaluations_per_row(len(self.columns)):,} model outputs a row: at "
                f"most {limit} rows per call; send fewer rows, or ask without explain",
                max_rows=limit,
            )
        if self.method == "linear":
            return self._linear(rows)
        if self.method == "tree_shap":
            return self._trees(rows)
        return self._sampled(rows)

    # -- per method -------------------------------------------------------------------------

    def _linear(self, rows: Table) -> Explanation:
        X = self._features(rows)
        coef = np.atleast_2d(np.asarray(self._model.coef_, dtype="float64"))
        intercept = np.atleast_1d(np.asarray(self._model.intercept_, dtype="float64"))
        mean = self._feature_mean()
        raw = np.asarray(X @ coef.T) + intercept  # (rows, outputs)
        which, explained, scale = self._which(raw)
        groups = self._feature_groups(coef.shape[1])
        values = np.empty((rows.n_rows, len(self.columns)))
        base = np.empty(rows.n_rows)
        for k in np.unique(which):
            at = np.flatnonzero(which == k)
            weighted = _scaled(X[at], coef[k]) - (mean * coef[k])[None, :]
            values[at] = weighted @ groups
            base[at] = intercept[k] + float(mean @ coef[k])
        return Explanation("linear", "mlgate", scale, self.columns, base, values, explained)

    def _trees(self, rows: Table) -> Explanation:
        X = self._features(rows)
        library = self.version.algorithm
        if library in SCIKIT_TREES:
            return self._scikit_trees(X)
        contributions, implementation = self._small_batch(X) or _native_contributions(
            library, self._model, X
        )
        # contributions: (rows, outputs, features + 1), the last the base (expected value)
        raw = contributions.sum(axis=2)
        which, explained, scale = self._which(raw)
        picked = contributions[np.arange(len(which)), which]
        groups = self._feature_groups(picked.shape[1] - 1)
        return Explanation(
            "tree_shap", implementation, scale, self.columns, picked[:, -1],
            picked[:, :-1] @ groups, explained,
        )  # fmt: skip

    def _small_batch(self, X: Any) -> tuple[np.ndarray, str] | None:
        """An XGBoost model's rows through fast_shap's tables: in numpy for a few rows, by the
        compiled loop (explainers/shap_kernel.py) for any batch once it is compiled. Each is
        checked against the library's pred_contribs on probe rows when it is switched in (the
        tables when first needed, the loop when it is first found compiled) and retired, logged
        once, if it raises later (runtime/switches.py). None where the library explains."""
        from mlgate.explainers import fast_shap, shap_kernel

        if self.version.algorithm != "xgboost" or not isinstance(X, np.ndarray):
            return None
        compiled = shap_kernel.ready()
        if len(X) > fast_shap.SMALL_BATCH and not compiled:
            return None
        if self._tables is None:
            self._tables = self._checked_tables(X.shape[1])
        if self._tables is False:
            return None
        if compiled and self._kernel is None:
            self._kernel = self._checked_kernel(self._tables, X.shape[1])
        if self._kernel is not None and self._kernel.active:
            return self._kernel(X)
        if len(X) > fast_shap.SMALL_BATCH or self._numpy is None or not self._numpy.active:
            return None
        return self._numpy(X)

    def _library_contributions(self, X: Any) -> tuple[np.ndarray, str]:
        return _native_contributions(self.version.algorithm, self._model, X)

    def _checked_tables(self, n_features: int) -> Any:
        import json

        from mlgate.explainers import fast_shap

        booster = self._model.get_booster()
        document = json.loads(bytes(booster.save_raw(raw_format="json")))
        tables = fast_shap.checked(
            document, lambda probe: self._library_contributions(probe)[0], n_features
        )
        if tables is None:
            return False

        def numpy_tables(X: np.ndarray) -> tuple[np.ndarray, str]:
            return tables.contributions(X), TABLES

        self._numpy = Guarded(
            f"TreeSHAP tables of {self.version.ref}", numpy_tables, self._library_contributions
        )
        return tables

    def _checked_kernel(self, tables: Any, n_features: int) -> Guarded[tuple[np.ndarray, str]]:
        """The compiled loop over `tables`, if it gives the library's values on the probe rows,
        in one block (one thread) and in several (the parallel loop)."""
        from mlgate.explainers import fast_shap, shap_kernel
        from mlgate.runtime.switches import probed

        what = f"compiled TreeSHAP loop of {self.version.ref}"

        def check() -> bool:
            probe = fast_shap.probe_rows(tables, n_features)
            many = np.vstack([probe] * (1 + (2 * shap_kernel.MAX_BLOCK) // len(probe)))
            return all(
                fast_shap.agrees(
                    shap_kernel.contributions(tables, rows), self._library_contributions(rows)[0]
                )
                for rows in (probe[:3], many)
            )

        def kernel(X: np.ndarray) -> tuple[np.ndarray, str]:
            return shap_kernel.contributions(tables, X), TABLES

        return Guarded(what, kernel if probed(what, check) else None, self._library_contributions)

    def _scikit_trees(self, X: Any) -> Explanation:
        import xgboost as xgb

        from mlgate.explainers import tree_shap

        classifier = self.version.task == "classification"
        if self._boosters is None:
            outputs = len(self.version.classes or ()) if classifier else 1
            self._boosters = tree_shap.boosters(self._model, outputs)
        matrix = xgb.DMatrix(X.astype(np.float32) if isinstance(X, np.ndarray) else X)
        stacked = np.stack(
            [b.predict(matrix, pred_contribs=True).astype("float64") for b in self._boosters],
            axis=1,
        )
        raw = stacked.sum(axis=2)
        if classifier:
            which = raw.argmax(axis=1) if raw.shape[1] > 2 else np.ones(len(raw), dtype=int)
            explained = _labels(self.version, which)
        else:
            which, explained = np.zeros(len(raw), dtype=int), None
        picked = stacked[np.arange(len(which)), which]
        groups = self._feature_groups(picked.shape[1] - 1)
        scale = "probability" if classifier else "prediction"
        return Explanation(
            "tree_shap", "xgboost pred_contribs on the converted trees", scale, self.columns,
            picked[:, -1], picked[:, :-1] @ groups, explained,
        )  # fmt: skip

    def _sampled(self, rows: Table) -> Explanation:
        background = self.background()
        classifier = self.version.task == "classification"
        which = np.zeros(rows.n_rows, dtype=int)
        if classifier:
            proba = np.asarray(self._model.predict_proba(self._features(rows)), dtype="float64")
            which = proba.argmax(axis=1) if proba.shape[1] > 2 else np.ones(len(proba), dtype=int)

        def output(table: Table, row_of: np.ndarray) -> np.ndarray:
            X = self._features(table)
            if not classifier:
                return np.asarray(self._model.predict(X), dtype="float64").ravel()
            p = np.asarray(self._model.predict_proba(X), dtype="float64")
            picked: np.ndarray = p[np.arange(len(p)), which[row_of]]
            return picked

        groups = self._key_groups(rows)
        start = Table({k: v[: sampling.WALKS // 2] for k, v in background.data.items()},
                      min(background.n_rows, sampling.WALKS // 2))  # fmt: skip
        found = sampling.shapley(rows, start, groups, output)
        return Explanation(
            "sampling", "mlgate", "probability" if classifier else "prediction", self.columns,
            found.base, found.values,
            _labels(self.version, which) if classifier else None,
            found.errors,
            {"walks_per_row": found.walks, "background_rows": found.background_rows,
             "model_outputs_per_row": sampling.evaluations_per_row(len(self.columns))},
        )  # fmt: skip

    # -- what the methods share -------------------------------------------------------------

    def background(self) -> Table:
        if self._background is None:
            self._background = self._background_source()
        return self._background

    def _feature_mean(self) -> np.ndarray:
        if self._mean is None:
            X = self._features(self.background())
            self._mean = np.asarray(X.mean(axis=0), dtype="float64").ravel()
        return self._mean

    def _which(self, raw: np.ndarray) -> tuple[np.ndarray, list[Any] | None, str]:
        """Which output each row explains, the class it stands for, and the scale."""
        if self.version.task != "classification":
            return np.zeros(len(raw), dtype=int), None, "prediction"
        if raw.shape[1] == 1:  # binary: the log-odds of the second class
            return (
                np.zeros(len(raw), dtype=int),
                _labels(self.version, np.ones(len(raw), int)),
                "log-odds",
            )
        which = raw.argmax(axis=1)
        return which, _labels(self.version, which), "margin"

    def _feature_groups(self, n_features: int) -> np.ndarray:
        """(features × columns) 0/1: which caller column each of the model's features is from
        (worked out once: it is the same on every call)."""
        if self._groups is None or self._groups.shape[0] != n_features:
            self._groups = self._traced_groups(n_features)
        return self._groups

    def _traced_groups(self, n_features: int) -> np.ndarray:
        owners = feature_owners(self._pipeline[:-1], self.version)
        if len(owners) != n_features:
            raise Conflict(
                f"{self.version.ref}: its {n_features} features could not be traced to its "
                "columns, so they cannot be explained per column"
            )
        index = {name: j for j, name in enumerate(self.columns)}
        groups = np.zeros((n_features, len(self.columns)))
        groups[np.arange(n_features), [index[o] for o in owners]] = 1.0
        return groups

    def _key_groups(self, rows: Table) -> list[list[str]]:
        return [[k for k in rows.data if _owner(k, self.version) == c] for c in self.columns]


def _method(version: Subject, model: Any) -> str:
    if version.algorithm in LINEAR or (
        version.algorithm == "linear_svm" and version.task == "regression"
    ):
        return "linear"
    if version.algorithm in BOOSTERS | SCIKIT_TREES:
        return "tree_shap"
    return "sampling"


def _labels(version: Subject, which: np.ndarray) -> list[Any]:
    labels = np.asarray(version.classes or (), dtype=object)
    out: list[Any] = labels[which].tolist()
    return out


def _scaled(X: Any, weights: np.ndarray) -> np.ndarray:
    if isinstance(X, np.ndarray):
        out: np.ndarray = X * weights[None, :]
        return out
    return np.asarray(X.multiply(weights[None, :]).toarray())


def _native_contributions(library: str, model: Any, X: Any) -> tuple[np.ndarray, str]:
    """(rows, outputs, features + 1) from the library's own TreeSHAP; the base last."""
    if library == "xgboost":
        import xgboost as xgb

        booster = model.get_booster()
        matrix = xgb.DMatrix(
            X, feature_types=booster.feature_types, enable_categorical=True, nthread=1
        )
        found = booster.predict(
            matrix, pred_contribs=True, iteration_range=model._get_iteration_range(None)
        )
        found = np.asarray(found, dtype="float64")
        return (found[:, None, :] if found.ndim == 2 else found), "xgboost pred_contribs"
    if library == "lightgbm":
        booster = getattr(model, "booster", None) or model.booster_  # loaded, or just fitted
        found = np.asarray(booster.predict(X, pred_contrib=True), dtype="float64")
        outputs = found.shape[1] // (X.shape[1] + 1)
        return found.reshape(len(found), outputs, X.shape[1] + 1), "lightgbm pred_contrib"
    from catboost import Pool

    pool = Pool(X, cat_features=model.get_cat_feature_indices() or None)
    found = np.asarray(model.get_feature_importance(pool, type="ShapValues"), dtype="float64")
    return (found[:, None, :] if found.ndim == 2 else found), "catboost ShapValues"


def feature_owners(preprocessor: Any, version: Subject) -> list[str]:
    """For each feature the model sees, the caller's column it was made from."""
    from sklearn.pipeline import Pipeline

    from mlgate.runtime.encoders import OneHot

    transformer = preprocessor.steps[0][1] if isinstance(preprocessor, Pipeline) else preprocessor
    owners: list[str] = []
    for name, step, selected in transformer.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        keys = [selected] if isinstance(selected, str) else list(selected)
        width = transformer.output_indices_[name]
        n = width.stop - width.start
        last = step.steps[-1][1] if isinstance(step, Pipeline) and step.steps else step
        if isinstance(last, OneHot):
            for key, categories in zip(keys, last.categories_, strict=True):
                owners += [_owner(key, version)] * len(categories)
        elif n == len(keys):
            owners += [_owner(key, version) for key in keys]
        elif len(keys) == 1:  # a text column's words
            owners += [_owner(keys[0], version)] * n
        else:
            return []
    return owners


def _owner(key: str, version: Subject) -> str:
    """The caller's column behind a Table key (a datetime's parts are `name__part`)."""
    names = {c.name for c in version.columns}
    if key in names:
        return key
    head = key.rsplit("__", 1)[0]
    return head if head in names else key


def snapshot_sample(rows: Any, version: ModelVersion) -> Table:
    """Up to BACKGROUND_ROWS of a version's training snapshot (a DataFrame), as a Table."""
    from mlgate.schema import conform

    if len(rows) > BACKGROUND_ROWS:
        rows = rows.sample(BACKGROUND_ROWS, random_state=0)
    frame = conform(rows.reset_index(drop=True), version.columns)
    return Table({k: frame[k].to_numpy() for k in frame.columns}, len(frame))


def training_background(read_rows: Callable[[], Any], version: ModelVersion) -> Table:
    """The rows `version`'s explanations are measured against: a sample of its training
    snapshot, read by `read_rows` when first needed. A version stored without one is a
    conflict the caller can act on, not a crash."""
    try:
        rows = read_rows()
    except NotFound as exc:
        raise Conflict(
            f"{version.ref} has no stored training rows to explain against; "
            "retrain it (every version trained now stores them)"
        ) from exc
    return snapshot_sample(rows, version)
