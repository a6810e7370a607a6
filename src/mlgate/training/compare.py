"""Comparing two versions on the same rows, with real statistics.

Both versions predict the holdout rows of the candidate (version `b`, as it was split when `b`
was trained, from the rows stored with it; an imported `b`: the holdout it was imported with).
The difference in the metric (b − a) gets a paired bootstrap interval, and a paired test gives a
p-value: McNemar's exact test on the rows where exactly one version is right (classification),
or the Wilcoxon signed-rank test on the absolute errors (regression). The verdict names the
versions as every other surface does ("v5 is better") and says so only when both agree at
level `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlgate.access.audit import audited
from mlgate.errors import Conflict, InvalidInput
from mlgate.registry import aliases as lifecycle
from mlgate.registry.model import AliasEvent, ModelVersion, check_alias
from mlgate.registry.service import resolve_version
from mlgate.registry.store import ArtifactStore
from mlgate.runtime.predictors import PredictorCache
from mlgate.schema import conform
from mlgate.training import data as training_data
from mlgate.training.service import read_snapshot, split_rows
from mlgate.uow import UnitOfWork

N_BOOTSTRAP = 2000


@dataclass(frozen=True)
class Comparison:
    model: str
    a: int
    b: int
    metric: str
    value_a: float
    value_b: float
    difference: float  # b - a; for rmse, negative is better
    interval: tuple[float, float]  # 95% paired bootstrap interval of the difference
    test: str
    p_value: float
    alpha: float
    n_rows: int
    verdict: str  # "v5 is better" (b), "v3 is better" (a) or "no significant difference"
    at: datetime

    @property
    def b_is_better(self) -> bool:
        return self.verdict == better(self.b)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "interval": list(self.interval), "at": self.at.isoformat()}


def better(number: int) -> str:
    """The verdict that version `number` is significantly better, in the versions' own labels."""
    return f"v{number} is better"


@audited("models.compare", "{model_name}@{a} vs {b}")
def compare_versions(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    model_name: str,
    a: int,
    b: int,
    *,
    alpha: float = 0.05,
    now: datetime,
    seed: int = 0,
) -> Comparison:
    if a == b:
        raise InvalidInput("compare two different versions")
    if not 0 < alpha < 0.5:
        raise InvalidInput(f"alpha must lie in (0, 0.5), got {alpha}")
    version_a = resolve_version(uow, model_name, a)
    version_b = resolve_version(uow, model_name, b)
    if version_a.task != version_b.task or version_a.target != version_b.target:
        raise InvalidInput(f"v{a} and v{b} do not predict the same thing")
    lineage = version_b.lineage
    imported = (version_b.report or {}).get("import")
    if imported is not None and not imported.get("holdout"):
        raise InvalidInput(
            f"v{b} was imported without a holdout: it has no labelled rows to compare on; "
            "import it again with --holdout"
        )
    if lineage.test_size == 0:
        raise InvalidInput(
            f"v{b} was fitted on every row (--test-size 0): it has no unseen rows to compare "
            "on; compare versions that hold rows out, or read the cross-fitted metrics in "
            "their reports"
        )
    rows = holdout_rows(uow, artifacts, version_b)
    truth = rows[version_b.target].to_numpy()
    outputs = []
    for version in (version_a, version_b):
        try:
            features = conform(rows, version.columns)
        except InvalidInput as exc:
            raise InvalidInput(f"{version.ref} cannot score v{b}'s rows: {exc}") from None
        outputs.append(np.asarray(predictors.get(version).score(features).predictions))
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(truth), size=(N_BOOTSTRAP, len(truth)))
    if version_b.task == "classification":
        right_a = np.array([p == t for p, t in zip(outputs[0], truth, strict=True)])
        right_b = np.array([p == t for p, t in zip(outputs[1], truth, strict=True)])
        value_a, value_b = float(right_a.mean()), float(right_b.mean())
        diffs = right_b[samples].mean(axis=1) - right_a[samples].mean(axis=1)
        only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
        p_value = (
            1.0
            if only_a + only_b == 0
            else float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)
        )
        metric, test = "accuracy", "McNemar exact (binomial on discordant rows)"
        sign = 1.0
    else:
        errors_a = outputs[0].astype("float64") - truth.astype("float64")
        errors_b = outputs[1].astype("float64") - truth.astype("float64")
        value_a = float(np.sqrt(np.mean(errors_a**2)))
        value_b = float(np.sqrt(np.mean(errors_b**2)))
        diffs = np.sqrt(np.mean(errors_b[samples] ** 2, axis=1)) - np.sqrt(
            np.mean(errors_a[samples] ** 2, axis=1)
        )
        delta = np.abs(errors_b) - np.abs(errors_a)
        p_value = 1.0 if not np.any(delta) else float(stats.wilcoxon(delta).pvalue)
        metric, test = "rmse", "Wilcoxon signed-rank on absolute errors"
        sign = -1.0  # lower rmse is better
    low, high = (float(x) for x in np.percentile(diffs, [2.5, 97.5]))
    improvement = sign * (value_b - value_a)
    excludes_zero = low > 0 or high < 0
    if p_value < alpha and excludes_zero:
        verdict = better(b) if improvement > 0 else better(a)
    else:
        verdict = "no significant difference"
    comparison = Comparison(
        model=model_name,
        a=a,
        b=b,
        metric=metric,
        value_a=value_a,
        value_b=value_b,
        difference=value_b - value_a,
        interval=(low, high),
        test=test,
        p_value=p_value,
        alpha=alpha,
        n_rows=len(truth),
        verdict=verdict,
        at=now,
    )
    with uow:
        uow.models.add_comparison(model_name, a, b, comparison.to_json(), now)
        uow.commit()
    return comparison


def holdout_rows(uow: UnitOfWork, artifacts: ArtifactStore, version: ModelVersion) -> pd.DataFrame:
    """The labelled rows `version` was evaluated on: its training split's holdout, an imported
    version's whole holdout, or (fitted on every row, --test-size 0) every training row."""
    frame = read_snapshot(uow, artifacts, version.model_name, version.number)
    rows = frame[frame[version.target].notna()].reset_index(drop=True)
    lineage = version.lineage
    if (version.report or {}).get("import") is not None or lineage.test_size == 0:
        return rows
    prepared = training_data.prepare(
        frame, target=version.target, drop=lineage.dropped_columns, task=version.task
    )
    return rows.loc[split_rows(prepared, lineage.test_size, lineage.seed).X_test.index]


@dataclass(frozen=True)
class Baseline:
    """What a guarded promotion has to beat: a version and why that one (None: nothing)."""

    number: int | None
    why: str


@dataclass(frozen=True)
class GuardedPromotion:
    event: AliasEvent
    comparison: Comparison | None
    baseline: Baseline

    def to_json(self) -> dict[str, Any]:
        return {
            **self.event.to_json(),
            "compared_with": self.baseline.number,
            "compared_because": self.baseline.why,
            "comparison": None if self.comparison is None else self.comparison.to_json(),
        }


def baseline_for(uow: UnitOfWork, model_name: str, number: int, alias: str) -> Baseline:
    """The version that version `number` must beat to take `alias`: the alias's target; where
    the alias points nowhere yet, what the bare model name serves today (`resolve_version`'s
    rule: production, else the newest version in service); where that is the candidate itself,
    the newest other version in service, which the name served before it. None only when no
    other version is in service: then there is nothing to beat."""
    aliases = lifecycle.aliases_of(uow, model_name)
    current = aliases.get(alias)
    if current is not None:
        return Baseline(current, f"v{current} is what {alias} points at")
    served = resolve_version(uow, model_name, None)
    if served.number != number:
        return Baseline(
            served.number,
            f"{alias} points nowhere yet; v{served.number} is what {model_name!r} without an "
            "alias serves today",
        )
    with uow:
        others = [
            v.number
            for v in uow.models.versions(model_name)
            if v.archived_at is None and v.number != number
        ]
    if others:
        served_as = (
            "production points at it"
            if aliases.get("production") == number
            else "its newest version in service"
        )
        return Baseline(
            others[-1],
            f"{alias} points nowhere yet and {model_name!r} without an alias serves v{number} "
            f"itself ({served_as}); v{others[-1]} is the newest other version in service",
        )
    return Baseline(
        None,
        f"nothing to beat: {alias} points nowhere yet and no other version of {model_name!r} "
        "is in service",
    )


@audited("models.promote", "{model_name}@{number}")
def promote_if_better(
    uow: UnitOfWork,
    artifacts: ArtifactStore,
    predictors: PredictorCache,
    model_name: str,
    number: int,
    alias: str,
    *,
    alpha: float,
    actor: str,
    reason: str,
    now: datetime,
) -> GuardedPromotion:
    """Promote only if version `number` significantly beats what it replaces (`baseline_for`
    says which version that is, and why); with nothing to beat, promote and say so. The CLI,
    the admin API and the dashboard all call this."""
    check_alias(alias)
    baseline = baseline_for(uow, model_name, number, alias)
    comparison = None
    if baseline.number is not None and baseline.number != number:
        comparison = compare_versions(
            uow, artifacts, predictors, model_name, baseline.number, number, alpha=alpha, now=now
        )
        if not comparison.b_is_better:
            low, high = comparison.interval
            raise Conflict(
                f"v{number} is not significantly better than v{baseline.number} "
                f"({baseline.why}) on {comparison.metric}: {comparison.value_b:.4f} vs "
                f"{comparison.value_a:.4f}, difference 95% interval [{low:.4f}, {high:.4f}], "
                f"{comparison.test} p = {comparison.p_value:.3g} (alpha {alpha}); not promoted"
            )
    event = lifecycle.promote(uow, model_name, number, alias, actor=actor, reason=reason, now=now)
    return GuardedPromotion(event, comparison, baseline)
