"""A version's fitted pipeline as one SELECT, built with sqlglot and written in each dialect.

The query reads the model's input columns from a table and answers, per row, the key columns
given, then `prediction` and (classifiers) one `probability_<label>` per class. It nests one
SELECT per stage, each naming what the next reads, so no expression repeats another:

    input     each input column cast once: numbers to double precision, categories to text
              (bytes in MySQL, whose default collations call 'Red' and 'red ' equal to 'red')
    features  the model's matrix: fitted imputation and scaling, one-hot or ordinal codes
              (unknown categories as the served model takes them: no column, or missing)
    parts     the model's sums (a linear model's scores; trees in groups, see trees.py)
    scores    one raw score per output (margins, log-odds, values)
    outputs   probabilities through the model's link, and the label

Numbers are written with full precision in exponent form (`0.1e0`), which every dialect reads
as a double, and every sum of many terms is balanced (`(a + b) + (c + d)`): SQLite refuses an
expression deeper than 1,000 and PostgreSQL's parser recurses on each `+`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from mlgate.errors import Conflict, InvalidInput
from mlgate.exports.sql.model import SQLGLOT_DIALECT, Dialect
from mlgate.registry.model import ModelVersion
from mlgate.runtime.encoders import MISSING_CATEGORY
from mlgate.schema import DATETIME_PARTS

LINEAR = {"linear_regression", "ridge", "lasso", "elastic_net", "logistic_regression"}
TREES = {"decision_tree", "random_forest", "xgboost", "lightgbm"}
# What is refused, and why (said as is to the caller).
NO_SQL = {
    "k_nearest_neighbors": "its answer searches the training rows, which a query does not hold",
    "svm": "a kernel SVM sums a kernel over its support vectors, with Platt scaling after",
    "linear_svm": "its probabilities come from a calibration fitted on folds, averaged",
    "naive_bayes": "not converted yet",
    "catboost": "CatBoost's trees read categories as strings through its own statistics",
    "mlp": "a neural network is not converted to SQL",
    "cnn": "a neural network is not converted to SQL",
    "rnn": "a forecaster reads windows of a series, not rows",
    "lstm": "a forecaster reads windows of a series, not rows",
    "gru": "a forecaster reads windows of a series, not rows",
    "gan": "a generator makes rows rather than scoring them",
}
EXP_LIMIT = 700.0  # exp() of more overflows a double; PostgreSQL raises rather than give inf


@dataclass(frozen=True)
class Written:
    """A part written as text rather than built as sqlglot nodes: a big ensemble's trees are
    megabytes of CASEs, which sqlglot takes about 45 s to build and write for 1,000 trees of
    depth 8 (measured here) and this writer under a second. `write` is given each feature's
    name as the dialect quotes it; the text is checked against sqlglot's own writing of the
    same nodes (trees.to_sql) in the tests."""

    write: Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class Model:
    """The model's part of the query: sums over the features, then the raw scores over them,
    and how scores become answers ("identity", "sigmoid", "softmax", or "probabilities" where
    the scores are the classes' probabilities already)."""

    parts: Sequence[exp.Expr | Written]  # over the features' names, `feature(j)`
    scores: list[exp.Expr]  # over the parts' names, `part(k)`
    link: str


def refusal(version: ModelVersion) -> str | None:
    """Why `version` has no SQL, or None."""
    algorithm = version.algorithm
    if algorithm.startswith("imported-"):
        return "it was imported as a file of its own library"
    if version.task not in ("classification", "regression"):
        return f"a {version.task} model does not score rows"
    if algorithm in NO_SQL:
        return NO_SQL[algorithm]
    if algorithm not in LINEAR | TREES:
        return "no conversion to SQL is known for it yet"
    for column in version.columns:
        if column.type == "text":
            return f"column {column.name!r} is free text, vectorised by TF-IDF"
    return None


_TABLE = "mlgate_placeholder_table_7c1e"
_KEY = "mlgate_placeholder_key_7c1e"


@dataclass(frozen=True)
class Template:
    """A version's query, written once, with its table and key columns still to be named:
    the SQL handed out and the SQL checked are the same text but for those names."""

    text: str
    dialect: Dialect
    outputs: tuple[str, ...]  # the columns answered after the key
    n_stages: int

    def render(self, table: str, key: Sequence[str] = ()) -> str:
        """The query reading `table`, answering the `key` columns first."""
        write = SQLGLOT_DIALECT[self.dialect]
        return self.render_from(_table(table).sql(dialect=write), key)

    def render_from(self, source: str, key: Sequence[str] = ()) -> str:
        """The query reading `source` (a FROM item written in the dialect already: a table,
        or a subquery with its alias), answering the `key` columns first."""
        outputs = self.outputs
        clash = sorted(set(key) & set(outputs)) + [k for k in key if k.startswith("mlgate_")]
        if clash:
            raise InvalidInput(
                f"the key column {clash[0]!r} has the name of a column the query makes"
            )
        write = SQLGLOT_DIALECT[self.dialect]
        held = exp.Column(this=exp.to_identifier(_KEY, quoted=True)).sql(dialect=write) + ", "
        keys = "".join(_quoted(k).sql(dialect=write) + ", " for k in key)
        place = exp.Table(this=exp.to_identifier(_TABLE, quoted=True)).sql(dialect=write)
        return self.text.replace(held, keys).replace(place, source)


def compile_template(version: ModelVersion, pipeline: Any, dialect: Dialect) -> Template:
    """The query of `pipeline` in `dialect`, its table and key to be named (Template.render).
    Conflict where the version has no SQL (the reason is said)."""
    reason = refusal(version)
    if reason is not None:
        raise Conflict(f"{version.ref} ({version.algorithm}) has no SQL export: {reason}")
    outputs = output_names(version)
    names: list[str] = []  # what the preprocessing reads: a date-time column as its parts
    inputs: list[exp.Expr] = []
    for column in version.columns:
        if column.type == "datetime":
            for part, value in zip(DATETIME_PARTS, datetime_parts(_quoted(column.name), dialect),
                                   strict=True):  # fmt: skip
                inputs.append(value.as_(_name(f"i{len(names)}"), copy=False))
                names.append(f"{column.name}__{part}")
        else:
            inputs.append(_cast(_quoted(column.name), column.type, dialect).as_(
                _name(f"i{len(names)}"), copy=False))  # fmt: skip
            names.append(column.name)
    features = _features(pipeline[0], names)
    model = _model(version, pipeline[-1], len(features))
    held = exp.Column(this=exp.to_identifier(_KEY, quoted=True))
    stages = 0

    def stage(selected: list[exp.Expr], inner: exp.Expr, alias: str) -> exp.Select:
        nonlocal stages
        stages += 1
        if isinstance(inner, exp.Select) and dialect == "postgresql":
            # OFFSET 0 keeps PostgreSQL from pulling the stage up into the next one, which
            # would copy each score's whole sum into every place that reads it.
            inner = inner.offset(0, copy=False)
        source = (
            inner
            if isinstance(inner, exp.Table)
            else exp.Subquery(this=inner, alias=exp.TableAlias(this=_name(alias)))
        )
        # copy=False throughout: a big ensemble's query is megabytes of nodes, built once.
        return exp.Select(expressions=[held.copy(), *selected]).from_(source, copy=False)

    query = stage(inputs, exp.Table(this=exp.to_identifier(_TABLE, quoted=True)), "")
    query = stage(
        [f.as_(_name(f"x{j}"), copy=False) for j, f in enumerate(features)], query, "input"
    )
    written = {k: p for k, p in enumerate(model.parts) if isinstance(p, Written)}
    parts = [ref(f"w{k}") if isinstance(p, Written) else p for k, p in enumerate(model.parts)]
    query = stage([p.as_(_name(f"p{k}"), copy=False) for k, p in enumerate(parts)], query,
                  "features")  # fmt: skip
    query = stage([s.as_(_name(f"s{k}"), copy=False) for k, s in enumerate(model.scores)], query,
                  "parts")  # fmt: skip
    query = _answers(version, model, query, stage, outputs)
    write = SQLGLOT_DIALECT[dialect]
    text = query.sql(dialect=write)
    marker = held.sql(dialect=write) + ", "
    table_marker = exp.Table(this=exp.to_identifier(_TABLE, quoted=True)).sql(dialect=write)
    if text.count(marker) != stages or text.count(table_marker) != 1:
        # A category or column holding the placeholders' own names: nothing to do but refuse.
        raise Conflict(f"{version.ref}: its inputs name mlgate's placeholders; rename them")
    if written:
        text = _fill_written(version, text, written, len(features), write)
    return Template(text, dialect, outputs, stages)


def _fill_written(
    version: ModelVersion, text: str, written: dict[int, Written], n_features: int, write: str
) -> str:
    """`text` with each written part's placeholder replaced by its text."""
    names = [feature(j).sql(dialect=write) for j in range(n_features)]
    marker = ref("w0").sql(dialect=write)
    quote_open, quote_close = marker[0], marker[-1]
    pattern = re.compile(re.escape(quote_open + "mlgate_w") + r"(\d+)" + re.escape(quote_close))
    if len(pattern.findall(text)) != len(written):
        raise Conflict(f"{version.ref}: its inputs name mlgate's placeholders; rename them")
    return pattern.sub(lambda m: written[int(m.group(1))].write(names), text)


def output_names(version: ModelVersion) -> tuple[str, ...]:
    if version.task == "classification":
        return ("prediction", *(f"probability_{c}" for c in version.classes or ()))
    return ("prediction",)


# -- names and literals ---------------------------------------------------------------------


def _name(name: str) -> exp.Identifier:
    return exp.to_identifier(f"mlgate_{name}", quoted=True)


def _quoted(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def ref(name: str) -> exp.Column:
    """A column an earlier stage made."""
    return exp.Column(this=_name(name))  # exp.column() deep-copies its identifier


def feature(j: int) -> exp.Column:
    return ref(f"x{j}")


def part(k: int) -> exp.Column:
    return ref(f"p{k}")


def number(value: float) -> exp.Expr:
    """`value` to the last bit, read as a double everywhere (`1.5e0`, not `1.5`: PostgreSQL,
    MySQL and DuckDB read a plain decimal as an exact numeric)."""
    text = number_text(value)
    negative = text.startswith("-")
    # Literal.number parses: 100x slower
    literal = exp.Literal(this=text[1:] if negative else text, is_string=False)
    return exp.Neg(this=literal) if negative else literal


def label(value: Any) -> exp.Expr:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return exp.Literal.string(str(value))
    return exp.Literal.number(str(value))


def number_text(value: float) -> str:
    """`number(value)` as every dialect writes it."""
    value = float(value)
    if not math.isfinite(value):
        raise Conflict(f"the model holds {value}, which SQL cannot write as a number")
    text = repr(abs(value))
    if "e" not in text:
        text += "e0"
    return "-" + text if math.copysign(1.0, value) < 0 and value != 0 else text


def balanced_text(terms: Sequence[str]) -> str:
    """`balanced_sum` of terms written already, as every dialect writes it."""
    if not terms:
        return number_text(0.0)
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({balanced_text(terms[:half])}) + ({balanced_text(terms[half:])})"


def balanced_sum(terms: Sequence[exp.Expr]) -> exp.Expr:
    """`terms` added as a balanced tree: depth log2(n), not n."""
    if not terms:
        return number(0.0)
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    left, right = balanced_sum(terms[:half]), balanced_sum(terms[half:])
    return exp.Add(this=exp.Paren(this=left), expression=exp.Paren(this=right))


def _table(table: str) -> exp.Table:
    parts = table.split(".")
    if not table or len(parts) > 2 or not all(parts):
        raise InvalidInput(f"the table is a name or schema.name, not {table!r}")
    name = exp.to_identifier(parts[-1], quoted=True)
    db = exp.to_identifier(parts[0], quoted=True) if len(parts) == 2 else None
    return exp.Table(this=name, db=db)


def _cast(column: exp.Expr, kind: str, dialect: Dialect) -> exp.Expr:
    if kind in ("string", "text"):
        if dialect != "mysql":
            return exp.cast(column, "text")
        # MySQL's default collations ignore case and trailing spaces; bytes compare exactly,
        # as UTF-8: a latin1 column's bytes would differ from the categories' (`groß`).
        utf8 = exp.DataType(this=exp.DataType.Type.CHARACTER_SET, kind=exp.var("utf8mb4"))
        return exp.cast(exp.cast(column, utf8), "binary")
    if kind == "boolean" and dialect == "postgresql":
        return exp.cast(exp.cast(column, "int"), "double")  # boolean has no cast to double
    return exp.cast(column, "double")


def datetime_parts(column: exp.Expr, dialect: Dialect) -> list[exp.Expr]:
    """A date-time column's parts as serving derives them (schema.DATETIME_PARTS: year,
    month, day, day of the week with Monday 0, hour), each a double, read in UTC: a value
    with a time zone (PostgreSQL's and DuckDB's timestamptz, an ISO text with an offset in
    SQLite) is taken to UTC first, one without is taken to be UTC already, as serving takes
    a naive ISO string. NULL (and, in SQLite, text that is no date) gives NULL parts, which the
    fitted imputation fills as it fills a missing part in serving.

    PostgreSQL and DuckDB read timestamp, timestamptz and date columns (through the instant's
    seconds or microseconds since 1970, so the session's TimeZone plays no part); MySQL and
    MariaDB a DATETIME or DATE as it is (a TIMESTAMP column is read in the session's
    time_zone: set it to '+00:00'); SQLite ISO 8601 text."""

    def var(name: str) -> exp.Var:
        return exp.var(name)

    def call(name: str, *args: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=list(args))

    def double(e: exp.Expr) -> exp.Expr:
        return exp.cast(e, "double")

    if dialect == "sqlite":

        def strf(fmt: str) -> exp.Expr:
            return call("strftime", exp.Literal.string(fmt), column.copy())

        weekday: exp.Expr = exp.Mod(
            this=exp.Paren(this=exp.Add(this=exp.cast(strf("%w"), "integer"),
                                        expression=exp.Literal.number(6))),
            expression=exp.Literal.number(7),
        )  # fmt: skip
        return [double(strf("%Y")), double(strf("%m")), double(strf("%d")), double(weekday),
                double(strf("%H"))]  # fmt: skip
    if dialect == "mysql":
        return [
            double(call(name, column.copy()))
            for name in ("YEAR", "MONTH", "DAYOFMONTH", "WEEKDAY", "HOUR")
        ]
    if dialect == "postgresql":
        # The instant's seconds since 1970 (a timestamp's taken as UTC), back to a timestamp
        # in UTC: EXTRACT of a timestamptz would read it in the session's TimeZone.
        seconds = exp.Extract(this=var("EPOCH"), expression=column.copy())
        utc: exp.Expr = exp.AtTimeZone(this=call("TO_TIMESTAMP", seconds),
                                       zone=exp.Literal.string("UTC"))  # fmt: skip
    else:  # duckdb
        utc = call("MAKE_TIMESTAMP", call("EPOCH_US", column.copy()))

    def extract(part: str) -> exp.Expr:
        return exp.Extract(this=var(part), expression=exp.Paren(this=utc.copy()))

    iso = exp.Sub(this=extract("ISODOW"), expression=exp.Literal.number(1))
    return [double(extract("YEAR")), double(extract("MONTH")), double(extract("DAY")),
            double(iso), double(extract("HOUR"))]  # fmt: skip


# -- preprocessing --------------------------------------------------------------------------


def _features(preprocessor: Any, names: list[str]) -> list[exp.Expr]:
    """The model's matrix, column by column, over the input stage."""
    index = {name: k for k, name in enumerate(names)}
    out: list[exp.Expr] = []
    for _, transformer, columns in preprocessor.transformers_:
        if transformer == "drop" or (isinstance(columns, list | tuple) and not columns):
            continue
        if isinstance(columns, str):
            raise Conflict("a text column's TF-IDF has no SQL export")
        refs: list[exp.Expr] = [ref(f"i{index[c]}") for c in columns]
        if transformer == "passthrough":
            steps: list[tuple[str, Any]] = []
        else:
            steps = getattr(transformer, "steps", None) or [("step", transformer)]
        out.extend(_transform(steps, refs))
    return out


def _transform(steps: list[tuple[str, Any]], refs: list[exp.Expr]) -> list[exp.Expr]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, StandardScaler

    from mlgate.runtime.encoders import OneHot

    current: list[exp.Expr] = list(refs)
    for _, step in steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, FunctionTransformer) and step.func is None:
            continue  # what "passthrough" becomes once fitted
        if isinstance(step, SimpleImputer):
            fill = step.statistics_
            current = [
                exp.Coalesce(this=e, expressions=[_fill(v)])
                for e, v in zip(current, fill, strict=True)
            ]
        elif isinstance(step, StandardScaler):
            mean = step.mean_ if step.with_mean else None
            scale = step.scale_ if step.with_std else None
            scaled = []
            for j, e in enumerate(current):
                if mean is not None:
                    e = exp.Sub(this=exp.Paren(this=e), expression=number(mean[j]))
                if scale is not None:
                    e = exp.Div(this=exp.Paren(this=e), expression=number(scale[j]))
                scaled.append(e)
            current = scaled
        elif isinstance(step, OneHot):
            current = [
                _one_hot_cell(e, c)
                for e, categories in zip(current, step.categories_, strict=True)
                for c in categories
            ]
        elif isinstance(step, OrdinalEncoder):
            current = [_ordinal(e, cats) for e, cats in zip(current, step.categories_, strict=True)]
        else:
            raise Conflict(f"its preprocessing step {type(step).__name__} has no SQL export")
    return current


def _fill(value: Any) -> exp.Expr:
    if isinstance(value, str):
        return exp.Literal.string(value)
    return number(float(value))


def _one_hot_cell(column: exp.Expr, category: Any) -> exp.Expr:
    """1 where `column` is `category` (missing where it is MISSING_CATEGORY), else 0: an
    unseen category is 0 in every cell, as the served encoder makes it."""
    hit: exp.Expr
    if category == MISSING_CATEGORY:
        hit = exp.Is(this=column.copy(), expression=exp.Null())
    else:
        hit = exp.EQ(this=column.copy(), expression=exp.Literal.string(str(category)))
    return exp.Case(ifs=[exp.If(this=hit, true=number(1.0))], default=number(0.0))


def _ordinal(column: exp.Expr, categories: Any) -> exp.Expr:
    """The category's code; missing and unseen categories are missing (NULL), as the served
    encoder (handle_unknown="use_encoded_value", unknown_value=NaN) leaves them to the trees."""
    ifs = [
        exp.If(
            this=exp.EQ(this=column.copy(), expression=exp.Literal.string(str(c))), true=number(k)
        )
        for k, c in enumerate(categories)
        if not (isinstance(c, float) and math.isnan(c)) and c is not None
    ]
    if not ifs:
        return exp.Null()
    return exp.Case(ifs=ifs, default=exp.Null())


# -- models ---------------------------------------------------------------------------------


def _model(version: ModelVersion, estimator: Any, n_features: int) -> Model:
    if version.algorithm in LINEAR:
        return _linear(version, estimator, n_features)
    from mlgate.exports.sql.trees import tree_model

    return tree_model(version, estimator, n_features)


def _linear(version: ModelVersion, estimator: Any, n_features: int) -> Model:
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype="float64"))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype="float64"))
    if coef.shape[1] != n_features:
        raise Conflict(
            f"{version.ref}: the model reads {coef.shape[1]} features, the preprocessing "
            f"makes {n_features}"
        )
    parts = []
    for row, b in zip(coef, np.broadcast_to(intercept, (len(coef),)), strict=True):
        terms = [
            exp.Mul(this=feature(j), expression=number(w)) for j, w in enumerate(row) if w != 0
        ]
        parts.append(balanced_sum([*terms, number(b)]))
    scores: list[exp.Expr] = [part(k) for k in range(len(parts))]
    if version.task != "classification":
        return Model(parts, scores, "identity")
    return Model(parts, scores, "sigmoid" if len(parts) == 1 else "softmax")


# -- answers --------------------------------------------------------------------------------


def sigmoid(score: exp.Expr) -> exp.Expr:
    """1 / (1 + e^-s), with the exponent held within what a double holds."""
    clamped = exp.Least(
        this=exp.Greatest(
            this=exp.Neg(this=exp.Paren(this=score)), expressions=[number(-EXP_LIMIT)]
        ),
        expressions=[number(EXP_LIMIT)],
    )
    return exp.Div(
        this=number(1.0),
        expression=exp.Paren(this=exp.Add(this=number(1.0), expression=exp.Exp(this=clamped))),
    )


def _argmax(values: Sequence[exp.Expr], labels: Sequence[Any]) -> exp.Expr:
    """The label of the first largest value, as numpy's argmax picks it."""
    ifs = []
    for k in range(len(values) - 1):
        others = [exp.GTE(this=values[k].copy(), expression=values[j].copy())
                  for j in range(k + 1, len(values))]  # fmt: skip
        condition: exp.Expr = others[0]
        for o in others[1:]:
            condition = exp.And(this=condition, expression=o)
        ifs.append(exp.If(this=condition, true=label(labels[k])))
    return exp.Case(ifs=ifs, default=label(labels[-1]))


Stage = Callable[[list[exp.Expr], exp.Expr, str], exp.Select]


def _answers(
    version: ModelVersion, model: Model, query: exp.Select, stage: Stage, outputs: tuple[str, ...]
) -> exp.Select:
    def out(name: str) -> exp.Identifier:
        return exp.to_identifier(name, quoted=True)

    scores = [ref(f"s{k}") for k in range(len(model.scores))]
    if model.link == "identity":
        return stage([scores[0].as_(out("prediction"), copy=False)], query, "scores")
    labels = list(version.classes or ())
    if model.link == "probabilities":  # a forest's or a tree's own: the label is their argmax
        answers = [_argmax(scores, labels).as_(out(outputs[0]), copy=False)] + [
            s.copy().as_(out(outputs[k + 1]), copy=False) for k, s in enumerate(scores)
        ]
        return stage(answers, query, "scores")
    if model.link == "sigmoid":
        # p1 first, then p0 = 1 - p1, as scikit-learn, XGBoost and LightGBM give them.
        query = stage(
            [*(x.copy() for x in scores), sigmoid(scores[0]).as_(_name("q1"), copy=False)],
            query,
            "scores",
        )
        q1 = ref("q1")
        answers = [
            exp.Case(ifs=[exp.If(this=exp.GT(this=q1.copy(), expression=exp.Sub(
                this=number(1.0), expression=q1.copy())), true=label(labels[1]))],
                default=label(labels[0])).as_(out(outputs[0]), copy=False),
            exp.Sub(this=number(1.0), expression=q1.copy()).as_(out(outputs[1]), copy=False),
            q1.copy().as_(out(outputs[2]), copy=False),
        ]  # fmt: skip
        return stage(answers, query, "link")
    # softmax: e^(s_k - max) / sum, each exponent held within a double's range
    top = exp.Greatest(this=scores[0].copy(), expressions=[s.copy() for s in scores[1:]])
    exps = [
        exp.Exp(this=exp.Greatest(this=exp.Sub(this=s.copy(), expression=top.copy()),
                                  expressions=[number(-EXP_LIMIT)])).as_(_name(f"e{k}"), copy=False)
        for k, s in enumerate(scores)
    ]  # fmt: skip
    query = stage([*(x.copy() for x in scores), *exps], query, "scores")
    e = [ref(f"e{k}") for k in range(len(scores))]
    total = balanced_sum([x.copy() for x in e]).as_(_name("total"), copy=False)
    query = stage([*(x.copy() for x in scores), *(x.copy() for x in e), total], query,
                  "exps")  # fmt: skip
    answers = [_argmax(scores, labels).as_(out(outputs[0]), copy=False)] + [
        exp.Div(this=e[k].copy(), expression=ref("total")).as_(out(outputs[k + 1]), copy=False)
        for k in range(len(scores))
    ]
    return stage(answers, query, "sums")
