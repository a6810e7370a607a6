"""The algorithm catalogue: each algorithm's tasks, defaults, search space and how to build it.

Builders import their library on first use, so the core installs and imports without the boosted
libraries (``pip install mlgate[boost]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal

from mlgate.errors import InvalidInput, NotFound
from mlgate.registry.model import Task
from mlgate.training.spaces import Choice, FloatRange, IntRange, Space

Encoding = Literal["onehot", "ordinal", "strings"]
Format = Literal["skops", "xgboost", "lightgbm", "catboost", "torch"]


@dataclass(frozen=True)
class FeatureLayout:
    """How the preprocessed matrix is laid out: numbers first, then categorical, then text."""

    n_numeric: int
    n_categorical: int
    has_text: bool = False
    all_non_negative: bool = False
    all_binary: bool = False

    @property
    def categorical_indices(self) -> list[int]:
        return list(range(self.n_numeric, self.n_numeric + self.n_categorical))


Builder = Callable[[Task, FeatureLayout], Any]


@dataclass(frozen=True)
class Algorithm:
    name: str
    tasks: tuple[Task, ...]
    description: str  # two plain sentences for `mlgate algorithms list/show`
    builder: Builder
    space: dict[str, Space] = field(default_factory=dict)
    needs_scaling: bool = False
    encoding: Encoding = "onehot"
    dense: bool = False
    format: Format = "skops"
    library: str = "scikit-learn"
    statsmodels_twin: bool = False  # its coefficient table comes with statsmodels' errors
    fit_params: Callable[[FeatureLayout], dict[str, Any]] | None = None
    accepts_text: bool = True
    native_missing: bool = False  # takes NaN as "missing" itself: no imputation in front
    positional: bool = False  # reads its inputs by position (pixels): keeps constant columns

    def build(
        self, task: Task, layout: FeatureLayout, params: Mapping[str, Any] | None = None
    ) -> Any:
        """A fresh, unfitted estimator for `task` with `params` applied.

        For naive_bayes, the parameter ``variant`` (gaussian, multinomial, complement, bernoulli)
        picks the model instead of choosing it from the data."""
        if task not in self.tasks:
            able = ", ".join(a.name for a in CATALOGUE.values() if task in a.tasks)
            raise InvalidInput(
                f"{self.name} cannot do {task}; it does {' and '.join(self.tasks)}. "
                f"For {task}, try {able}"
            )
        params = dict(params or {})
        variant = params.pop("variant", None)
        if variant is not None and self.name != "naive_bayes":
            raise InvalidInput(f"{self.name} has no parameter 'variant'; only naive_bayes does")
        estimator = _naive_bayes_variant(variant) if variant else self.builder(task, layout)
        if not params:
            return estimator
        known = estimator.get_params(deep=False)
        nested = estimator.get_params(deep=True)
        resolved: dict[str, Any] = {}
        for key, value in params.items():
            # A wrapped estimator (a calibrated SVM) takes its inner model's parameters by name.
            name = key if key in known or f"estimator__{key}" not in nested else f"estimator__{key}"
            if name not in known and name not in nested:
                raise InvalidInput(
                    f"{self.name} has no parameter {key!r}; its parameters: "
                    f"{', '.join(sorted(self.parameter_names(task)))}"
                )
            resolved[name] = value
        try:
            return estimator.set_params(**resolved)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{self.name}: {exc}") from None

    def defaults(self, task: Task | None = None) -> dict[str, Any]:
        """Parameter defaults; a wrapped estimator's are listed under their plain names."""
        estimator = self.builder(task or self.tasks[0], FeatureLayout(1, 0))
        params = dict(estimator.get_params(deep=False))
        inner = params.pop("estimator", None)
        if inner is not None and hasattr(inner, "get_params"):
            params.update(inner.get_params(deep=False))
        return params

    def parameter_names(self, task: Task | None = None) -> list[str]:
        return sorted(self.defaults(task))


def _sk(module: str, name: str, **fixed: Any) -> Callable[[], Any]:
    def make() -> Any:
        return getattr(import_module(module), name)(**fixed)

    return make


def _by_task(classifier: Callable[[], Any], regressor: Callable[[], Any]) -> Builder:
    return lambda task, layout: classifier() if task == "classification" else regressor()


def _one(make: Callable[[], Any]) -> Builder:
    return lambda task, layout: make()


def _library(name: str) -> Any:
    try:
        return import_module(name)
    except ImportError:
        raise InvalidInput(
            f"{name} is not installed; install mlgate with the boosted libraries: "
            "pip install 'mlgate[boost]'"
        ) from None


def _network(kind: str) -> Builder:
    def build(task: Task, layout: FeatureLayout) -> Any:
        try:
            estimators = import_module("mlgate.neural.estimators")
        except ImportError:
            raise InvalidInput(
                "the neural networks need PyTorch, which is not installed: "
                "pip install 'mlgate[torch]' -c constraints.txt"
            ) from None
        role = "Classifier" if task == "classification" else "Regressor"
        return getattr(estimators, f"{kind}{role}")()

    return build


def _gan(task: Task, layout: FeatureLayout) -> Any:
    try:
        gan = import_module("mlgate.neural.gan")
    except ImportError:
        raise InvalidInput(
            "the gan needs PyTorch, which is not installed: "
            "pip install 'mlgate[torch]' -c constraints.txt"
        ) from None
    return gan.TabularGAN()


def _recurrent(cell: str) -> Builder:
    """A forecaster of ordered series, or (classification, regression) a network that reads
    each row's inputs in column order."""

    def build(task: Task, layout: FeatureLayout) -> Any:
        try:
            sequences = import_module("mlgate.neural.sequences")
            estimators = import_module("mlgate.neural.estimators")
        except ImportError:
            raise InvalidInput(
                f"{cell} needs PyTorch, which is not installed: "
                "pip install 'mlgate[torch]' -c constraints.txt"
            ) from None
        if task == "forecast":
            return sequences.SequenceForecaster(cell=cell)
        if task == "classification":
            return estimators.RecurrentClassifier(cell=cell)
        return estimators.RecurrentRegressor(cell=cell)

    return build


_RECURRENT_SPACE: dict[str, Space] = {
    "hidden_size": IntRange(16, 128, log=True),
    "num_layers": IntRange(1, 2),
    "learning_rate": FloatRange(3e-4, 1e-2, log=True),
}


def _recurrent_algorithm(cell: str, description: str) -> Algorithm:
    return Algorithm(
        cell,
        ("forecast", "classification", "regression"),
        description,
        _recurrent(cell),
        _RECURRENT_SPACE,
        format="torch",
        library="torch",
        accepts_text=False,
        needs_scaling=True,  # classification and regression: rows read in column order
        dense=True,
        positional=True,
    )


_NAIVE_BAYES = {
    "gaussian": "GaussianNB",
    "multinomial": "MultinomialNB",
    "complement": "ComplementNB",
    "bernoulli": "BernoulliNB",
}


def _naive_bayes_variant(variant: str) -> Any:
    if variant not in _NAIVE_BAYES:
        raise InvalidInput(
            f"naive_bayes variant {variant!r} is not one of {', '.join(_NAIVE_BAYES)}"
        )
    return getattr(import_module("sklearn.naive_bayes"), _NAIVE_BAYES[variant])()


def _naive_bayes(task: Task, layout: FeatureLayout) -> Any:
    nb = import_module("sklearn.naive_bayes")
    if layout.has_text and layout.all_non_negative:
        return nb.ComplementNB()
    if layout.all_binary:
        return nb.BernoulliNB()
    return nb.GaussianNB()


def _svm(task: Task, layout: FeatureLayout) -> Any:
    svm = import_module("sklearn.svm")
    if task == "regression":
        return svm.SVR()
    calibration = import_module("sklearn.calibration")
    # Platt scaling fitted on cross-validated decision values, one SVC fitted on all rows.
    return calibration.CalibratedClassifierCV(svm.SVC(), method="sigmoid", ensemble=False)


def _linear_svm(task: Task, layout: FeatureLayout) -> Any:
    svm = import_module("sklearn.svm")
    if task == "regression":
        return svm.LinearSVR(random_state=0, max_iter=5000)
    calibration = import_module("sklearn.calibration")
    # LinearSVC has no probabilities; sigmoid calibration over 3 folds gives them.
    return calibration.CalibratedClassifierCV(
        svm.LinearSVC(random_state=0, max_iter=5000), method="sigmoid", cv=3
    )


def _xgboost(task: Task, layout: FeatureLayout) -> Any:
    xgb = _library("xgboost")
    types = ["q"] * layout.n_numeric + ["c"] * layout.n_categorical
    common: dict[str, Any] = {
        "n_estimators": 300,
        "learning_rate": 0.1,
        "max_depth": 6,
        "tree_method": "hist",
        "enable_categorical": layout.n_categorical > 0,
        "feature_types": types if layout.n_categorical else None,
        "n_jobs": 1,
        "random_state": 0,
    }
    if task == "classification":
        return xgb.XGBClassifier(**common)
    return xgb.XGBRegressor(**common)


def _lightgbm(task: Task, layout: FeatureLayout) -> Any:
    lgb = _library("lightgbm")
    common: dict[str, Any] = {"n_estimators": 300, "n_jobs": 1, "random_state": 0, "verbose": -1}
    if task == "classification":
        return lgb.LGBMClassifier(**common)
    return lgb.LGBMRegressor(**common)


def _catboost(task: Task, layout: FeatureLayout) -> Any:
    cb = _library("catboost")
    common: dict[str, Any] = {
        "iterations": 300,
        "depth": 6,  # CatBoost lists only what is set: name what the search space tunes
        "thread_count": 1,
        "random_seed": 0,
        "verbose": False,
        "allow_writing_files": False,
        "cat_features": layout.categorical_indices or None,
    }
    if task == "classification":
        return cb.CatBoostClassifier(**common)
    return cb.CatBoostRegressor(**common)


LINEAR_MODEL = "sklearn.linear_model"
_BOOSTED_SPACE: dict[str, Space] = {
    "n_estimators": IntRange(50, 600, log=True),
    "learning_rate": FloatRange(0.01, 0.3, log=True),
}

CATALOGUE: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "linear_regression",
            ("regression",),
            "Ordinary least squares: predicts a number as a weighted sum of the inputs. "
            "Fast, easy to read, and the first baseline for any regression.",
            # lstsq treats singular values under tol x the largest as zero; scikit-learn's 1e-6
            # dropped real directions of designs with condition numbers past ~1e6 (5 digits
            # lost at 1e8). 1e-13 keeps them and still cuts an exactly repeated column.
            _one(_sk(LINEAR_MODEL, "LinearRegression", tol=1e-13)),
            needs_scaling=True,
            statsmodels_twin=True,
        ),
        Algorithm(
            "ridge",
            ("regression",),
            "Least squares with an L2 penalty that shrinks every weight a little. "
            "Steadier than plain least squares when inputs are correlated.",
            _one(_sk(LINEAR_MODEL, "Ridge")),
            {"alpha": FloatRange(1e-3, 1e3, log=True)},
            needs_scaling=True,
        ),
        Algorithm(
            "lasso",
            ("regression",),
            "Least squares with an L1 penalty that sets unhelpful weights to exactly zero. "
            "Doubles as feature selection.",
            _one(_sk(LINEAR_MODEL, "Lasso", max_iter=10_000)),
            {"alpha": FloatRange(1e-4, 10.0, log=True)},
            needs_scaling=True,
        ),
        Algorithm(
            "elastic_net",
            ("regression",),
            "Least squares with a blend of L1 and L2 penalties. "
            "Selects features like lasso while staying stable like ridge.",
            _one(_sk(LINEAR_MODEL, "ElasticNet", max_iter=10_000)),
            {"alpha": FloatRange(1e-4, 10.0, log=True), "l1_ratio": FloatRange(0.05, 0.95)},
            needs_scaling=True,
        ),
        Algorithm(
            "logistic_regression",
            ("classification",),
            "A linear model of the log-odds of each class, with an L2 penalty. "
            "Gives probabilities and coefficients that can be read as odds ratios.",
            _one(_sk(LINEAR_MODEL, "LogisticRegression", max_iter=1000)),
            {"C": FloatRange(1e-3, 1e3, log=True)},
            needs_scaling=True,
            statsmodels_twin=True,
        ),
        Algorithm(
            "decision_tree",
            ("classification", "regression"),
            "A single tree of yes/no questions about the inputs. "
            "Easy to follow by hand, but it overfits unless kept shallow.",
            _by_task(
                _sk("sklearn.tree", "DecisionTreeClassifier", random_state=0),
                _sk("sklearn.tree", "DecisionTreeRegressor", random_state=0),
            ),
            {"max_depth": IntRange(2, 20), "min_samples_leaf": IntRange(1, 50, log=True)},
            encoding="ordinal",
            native_missing=True,
        ),
        Algorithm(
            "random_forest",
            ("classification", "regression"),
            "Many decision trees, each grown on a bootstrap sample, voting together. "
            "Robust with little tuning and hard to overfit badly.",
            _by_task(
                _sk("sklearn.ensemble", "RandomForestClassifier", random_state=0, n_jobs=1),
                _sk("sklearn.ensemble", "RandomForestRegressor", random_state=0, n_jobs=1),
            ),
            {
                "n_estimators": IntRange(50, 500, log=True),
                "max_depth": Choice((None, 4, 8, 16)),
                "min_samples_leaf": IntRange(1, 20, log=True),
            },
            encoding="ordinal",
            native_missing=True,
        ),
        Algorithm(
            "k_nearest_neighbors",
            ("classification", "regression"),
            "Predicts from the k most similar training rows. "
            "No training to speak of, but slow to predict on large data.",
            _by_task(
                _sk("sklearn.neighbors", "KNeighborsClassifier"),
                _sk("sklearn.neighbors", "KNeighborsRegressor"),
            ),
            {"n_neighbors": IntRange(1, 50), "weights": Choice(("uniform", "distance"))},
            needs_scaling=True,
        ),
        Algorithm(
            "naive_bayes",
            ("classification",),
            "Bayes' rule with every input assumed independent given the class: Gaussian for "
            "numbers, complement NB for text and counts, Bernoulli for yes/no features. "
            "Very fast and a strong baseline for text.",
            _naive_bayes,
            dense=True,
        ),
        Algorithm(
            "svm",
            ("classification", "regression"),
            "A support vector machine with an RBF kernel: finds the widest margin between "
            "classes in a curved space. Strong on small and medium data; slow past ~20,000 rows.",
            _svm,
            {"C": FloatRange(1e-2, 1e3, log=True), "gamma": Choice(("scale", "auto"))},
            needs_scaling=True,
        ),
        Algorithm(
            "linear_svm",
            ("classification", "regression"),
            "A support vector machine with a straight boundary, fitted for large data. "
            "Probabilities come from a calibration step.",
            _linear_svm,
            needs_scaling=True,
        ),
        Algorithm(
            "xgboost",
            ("classification", "regression"),
            "Gradient-boosted trees, each correcting the last, with native categorical splits. "
            "Often the most accurate choice for tables.",
            _xgboost,
            {**_BOOSTED_SPACE, "max_depth": IntRange(2, 10)},
            encoding="ordinal",
            native_missing=True,
            format="xgboost",
            library="xgboost",
            accepts_text=False,
        ),
        Algorithm(
            "lightgbm",
            ("classification", "regression"),
            "Gradient-boosted trees grown leaf by leaf, with native categorical splits. "
            "Fast on large tables.",
            _lightgbm,
            {**_BOOSTED_SPACE, "num_leaves": IntRange(8, 256, log=True)},
            encoding="ordinal",
            native_missing=True,
            format="lightgbm",
            library="lightgbm",
            accepts_text=False,
            fit_params=lambda layout: {"categorical_feature": layout.categorical_indices or "auto"},
        ),
        Algorithm(
            "catboost",
            ("classification", "regression"),
            "Gradient-boosted symmetric trees with built-in handling of categorical columns. "
            "Good results with default settings.",
            _catboost,
            {"iterations": IntRange(50, 600, log=True), "depth": IntRange(3, 10)},
            encoding="strings",
            native_missing=True,
            format="catboost",
            library="catboost",
            accepts_text=False,
        ),
        Algorithm(
            "mlp",
            ("classification", "regression"),
            "A feed-forward neural network: layers of weighted sums and non-linear activations, "
            "trained by gradient descent with early stopping. Finds interactions on its own; "
            "needs more rows and tuning than trees.",
            _network("NeuralNet"),
            {
                "hidden_layers": Choice(("32", "64", "64,32", "128,64")),
                "dropout": FloatRange(0.0, 0.5),
                "learning_rate": FloatRange(1e-4, 1e-2, log=True),
                "weight_decay": FloatRange(1e-6, 1e-2, log=True),
            },
            needs_scaling=True,
            dense=True,
            format="torch",
            library="torch",
            accepts_text=False,
        ),
        Algorithm(
            "cnn",
            ("classification", "regression"),
            "A convolutional neural network: small filters slid along the inputs read as a "
            "sequence or an image (input_shape, e.g. 8x8 pixels), so neighbouring values are "
            "learned together.",
            _network("ConvNet"),
            {
                "channels": Choice(("8,16", "16,32", "32,64")),
                "hidden_layers": Choice(("32", "64", "128")),
                "dropout": FloatRange(0.0, 0.5),
                "learning_rate": FloatRange(1e-4, 1e-2, log=True),
            },
            needs_scaling=True,
            dense=True,
            format="torch",
            library="torch",
            accepts_text=False,
            positional=True,
        ),
        *(
            _recurrent_algorithm(cell, description)
            for cell, description in [
                (
                    "rnn",
                    "A plain recurrent network: reads the recent values of a series one by one "
                    "and forecasts the next ones. The simplest sequence model; forgets long "
                    "patterns.",
                ),
                (
                    "lstm",
                    "A long short-term memory network: a recurrent network with gates that decide "
                    "what to keep, so seasons and trends many steps back still count.",
                ),
                (
                    "gru",
                    "A gated recurrent unit network: the LSTM's idea with fewer gates. Often as "
                    "good, a little faster to train.",
                ),
            ]
        ),
        Algorithm(
            "gan",
            ("generation",),
            "A generative adversarial network: a generator learns to make rows that a critic "
            "cannot tell from the table's own. Gives synthetic rows with the same columns, "
            "distributions and correlations; no target.",
            _gan,
            {
                "hidden_layers": Choice(("64,64", "128,128", "256,256")),
                "learning_rate": FloatRange(5e-5, 1e-3, log=True),
            },
            format="torch",
            library="torch",
            accepts_text=False,
        ),
    ]
}


def get_algorithm(name: str) -> Algorithm:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise NotFound(
            f"no algorithm named {name!r}; choose one of {', '.join(sorted(CATALOGUE))}"
        ) from None
