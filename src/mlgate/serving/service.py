"""The prediction use cases every protocol shares (our JSON, MLflow's, the Open Inference
Protocol's): open the caller's plan, resolve the version (a pin wins), parse the rows for that
version's columns, admit, score, settle and meter. The edge authenticates and authorizes first,
parses the request and renders the answer in its protocol's own shape."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from mlgate.access.model import Principal
from mlgate.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    MlgateError,
    PaymentRequired,
    TooManyRequests,
    UnknownColumns,
)
from mlgate.monitoring.recorder import PredictionRecorder
from mlgate.outcomes import ANSWERED, Failed, Outcome, outcome_of
from mlgate.plans.enforce import Admission, Gate
from mlgate.registry.model import PRODUCTION, ModelVersion, Task
from mlgate.rollouts.model import Rollout
from mlgate.rollouts.tally import RolloutTally
from mlgate.runtime.predictors import Predictor, PredictorCache
from mlgate.schema import Column, Table
from mlgate.serving.asking import Asked
from mlgate.tracing import annotate, current, stage
from mlgate.training.seen import RowWarning, Seen

if TYPE_CHECKING:
    from mlgate.explainers.explain import Explainer, Explanation
    from mlgate.serving.shadow import ShadowScorer

T = TypeVar("T")
log = logging.getLogger("mlgate")
INLINE_TREE_ROWS = 8  # rows of trees explained on the event loop; more go to a thread
MAX_TOP = 2**31 - 1  # explain's {"top": N}, as the model's OpenAPI document bounds it
ParseRows = Callable[[Sequence[Column]], pd.DataFrame | Table]
Resolve = Callable[[str, int | None, str | None], ModelVersion]
Observe = Callable[[str, int, Outcome, int], None]  # model, version, outcome, rows answered


@dataclass
class Ask:
    """What a call asks for beyond predictions, read from its body with the rows (each
    protocol's parser fills it in): per-row explanations, and at most `top` columns each."""

    explain: bool = False
    top: int | None = None

    def read(self, value: Any, field: str) -> None:
        """`explain` as a body gives it: true, false, or {"top": N}."""
        if isinstance(value, bool):
            self.explain = value
            return
        top = value.get("top") if isinstance(value, dict) and set(value) <= {"top"} else None
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
            raise InvalidInput(
                f'{field} is true, false or {{"top": N}} with N a whole number from 1 to '
                f"{MAX_TOP:,}",
                errors=[FieldError(field, 'expected true, false or {"top": N}')],
            )
        self.explain, self.top = True, top


@dataclass(frozen=True)
class Prediction:
    version: ModelVersion
    predictions: list[Any]
    probabilities: list[list[float]] | None
    explanation: Explanation | None = None
    # row -> its values outside what training saw (training/seen.py); most answers: none
    warnings: Mapping[int, tuple[RowWarning, ...]] = field(default_factory=dict)

    @property
    def classes(self) -> list[Any] | None:
        return None if self.version.classes is None else list(self.version.classes)


@dataclass(frozen=True)
class Serving:
    """What the prediction use cases work with. `resolve` finds a version (a server passes its
    one-second cache); `observe(model, version, outcome, rows)` hears what became of every
    call (the edge's metrics), as the meter does."""

    gate: Gate
    predictors: PredictorCache
    resolve: Resolve
    recorder: PredictionRecorder
    observe: Observe
    explainer: Callable[[ModelVersion], Explainer] | None = None
    rollouts: Callable[[str], Sequence[Rollout]] | None = None  # a model's running ones
    tally: RolloutTally | None = None
    shadow: ShadowScorer | None = None
    # what a version's training rows show, read from its snapshot (kept with the loaded model)
    seen: Callable[[ModelVersion], Seen | None] | None = None


async def predict(
    serving: Serving,
    principal: Principal,
    asked: Asked,
    parse_rows: ParseRows,
    *,
    request_id: str,
    ask: Ask | None = None,
) -> tuple[Prediction, dict[str, str]]:
    """Score the rows for an authorized caller; the prediction and the answer's headers (rate
    limits, Sunset). Refusals and failures are raised, metered with their outcome and never
    counted. All but the count is CPU work with warm caches, done at once; the count awaits
    the counters."""
    gate = serving.gate
    with stage("plan"):
        admission = gate.open(principal)
    pinned = admission.pinned(asked.model)  # the subscription holds this consumer to a version
    seen: list[ModelVersion] = []
    parsed: list[pd.DataFrame | Table] = []
    number, alias = pinned or asked.number, None if pinned else asked.alias
    rollout = None if pinned else _rollout_of(serving, asked)
    side = "incumbent"
    if (
        rollout is not None
        and rollout.mode == "canary"
        and rollout.answers_with_candidate(principal.actor)
    ):
        side, number, alias = "candidate", rollout.candidate, None

    def rows_for(columns: Sequence[Column]) -> pd.DataFrame | Table:
        try:
            parsed.append(parse_rows(columns))
        except UnknownColumns as exc:  # say where this caller reads the columns it may send
            raise UnknownColumns(
                f"{exc}; GET /v1/models/{asked.ref}/schema lists the columns "
                f"{asked.ref} takes", errors=exc.errors,
            ) from None  # fmt: skip
        return parsed[0]

    started = time.perf_counter()
    try:
        with stage("resolve"):
            version = serving.resolve(asked.model, number, alias)
        _annotate(version, asked, admission, side if rollout is not None else None)
        seen.append(version)
        _check_predicts(version)
        with stage("decode"):
            frame = rows_for(version.columns)
        annotate("mlgate.rows", len(frame))
        explaining = ask is not None and ask.explain
        with stage("admit"):
            gate.admit(admission, asked.target, len(frame), version, explain=explaining)
        try:
            with stage("predict") as timed:
                predictor = serving.predictors.get(version)
                timed.set("mlgate.scorer", predictor.scorer)
                scores = predictor.score(frame)
        except Exception as exc:
            # The guard rail counts the server's failures (a broken artifact, a model that
            # raises), not the caller's refusals (rows it could not score)
            if rollout is not None and isinstance(outcome_of(exc), Failed):
                _tally(serving, rollout, side, started, failed=True)
            raise
        explanation = None
        if explaining:
            with stage("explain") as timed:
                explanation = await _explain(serving, version, frame)
                timed.set("mlgate.explained_rows", len(frame))
            annotate("mlgate.explained_rows", len(frame))
    except MlgateError as exc:
        _unanswered(serving, admission, asked.model, seen[0].number if seen else 0, exc)
        raise
    if rollout is not None:
        _tally(serving, rollout, side, started, failed=False)
    result = Prediction(
        version, scores.predictions, scores.probabilities, explanation,
        _warnings(serving, predictor, frame),
    )  # fmt: skip
    try:  # on the event loop, which serves other calls while the counters answer
        with stage("meter"):
            headers = await serving.gate.settle_async(admission, version)
    except MlgateError as exc:  # the gate metered its refusal
        serving.observe(version.model_name, version.number, outcome_of(exc), 0)
        raise
    serving.observe(version.model_name, version.number, ANSWERED, len(result.predictions))
    with stage("log_sample") as timed:
        logged = serving.recorder.offer(
            asked.model, version.number, principal.actor, request_id, parsed[0],
            result.predictions, rollout=rollout is not None,  # its test wants every call
        )  # fmt: skip
        timed.set("mlgate.logged", logged)
    if rollout is not None and rollout.mode == "shadow" and serving.shadow is not None:
        # never waited for; the candidate's answer is kept where labels can come back
        with stage("shadow_enqueue"):
            serving.shadow.offer(rollout, request_id, parsed[0], scores, keep=logged)
    return result, headers


def _annotate(version: ModelVersion, asked: Asked, admission: Admission, side: str | None) -> None:
    """What a trace of this call says of it: the model, version and alias, the plan, and the
    canary's side where a rollout answered."""
    call = current()
    if call is None or not call.recording:
        return
    said = call.attributes
    said["mlgate.model"] = version.model_name
    said["mlgate.version"] = version.number
    if asked.target.alias is not None:
        said["mlgate.alias"] = asked.target.alias
    if admission.plan is not None:
        said["mlgate.plan"] = admission.plan.name
    if side is not None:
        said["mlgate.canary_side"] = side


def _warnings(
    serving: Serving, predictor: Predictor, frame: pd.DataFrame | Table
) -> Mapping[int, tuple[RowWarning, ...]]:
    """The rows' values outside what training saw: checked against arrays made once per loaded
    model (its first call reads the version's snapshot); none for a version without one."""
    if serving.seen is None:
        return {}
    seen = seen_with(predictor, serving.seen)
    return {} if seen is None else seen.check(frame)


def seen_with(predictor: Predictor, read: Callable[[ModelVersion], Seen | None]) -> Seen | None:
    """What the loaded model's training rows showed: `read` once, then kept with the model.
    None where there is nothing to read, or it could not be read (logged: warnings are advice,
    and the prediction goes on without them)."""

    def make() -> Seen | None:
        try:
            return read(predictor.version)
        except Exception:
            log.exception("%s answers without warnings: its training rows could not be read",
                          predictor.version.ref)  # fmt: skip
            return None

    return predictor.attached("seen", make)


def _rollout_of(serving: Serving, asked: Asked) -> Rollout | None:
    """The running rollout of the alias the caller asked for (by its name or the model's bare
    name): never for a call that names a version."""
    if serving.rollouts is None or asked.target.version is not None:
        return None
    alias = asked.target.alias or PRODUCTION
    for rollout in serving.rollouts(asked.model):
        if rollout.running and rollout.alias == alias:
            return rollout
    return None


def _tally(serving: Serving, rollout: Rollout, side: str, started: float, *, failed: bool) -> None:
    if serving.tally is not None:
        latency_ms = (time.perf_counter() - started) * 1000
        serving.tally.count(rollout.id or 0, side, latency_ms, failed=failed)


async def _explain(
    serving: Serving, version: ModelVersion, frame: pd.DataFrame | Table
) -> Explanation:
    """The rows' explanations: at once for a closed form or a few rows of trees, in a worker
    thread for the first call of a version (its one-time work), for sampling and for many rows
    of trees (TreeSHAP of 1,000 rows takes a good part of
    a second; the libraries release the GIL, so the loop serves other calls meanwhile)."""
    if serving.explainer is None:
        raise Conflict("this server does not explain predictions")
    explainer = serving.explainer(version)
    table = frame if isinstance(frame, Table) else as_table(frame)
    inline = explainer.prepared() and (
        explainer.method == "linear"
        or (explainer.method == "tree_shap" and table.n_rows <= INLINE_TREE_ROWS)
    )
    if not inline:
        return await asyncio.to_thread(explainer.explain, table)
    return explainer.explain(table)


def as_table(frame: pd.DataFrame) -> Table:
    return Table({str(k): frame[k].to_numpy() for k in frame.columns}, len(frame))


def call_whole_model(
    serving: Serving,
    principal: Principal,
    asked: Asked,
    *,
    task: Task,
    rows: int,
    work: Callable[[Predictor], T],
) -> tuple[ModelVersion, T, dict[str, str]]:
    """A call to a generator or a forecaster, through the same plan checks as a prediction:
    `rows` is what the plan counts (rows generated; one per forecast)."""
    gate = serving.gate
    with stage("plan"):
        admission = gate.open(principal)
    pinned = admission.pinned(asked.model)
    with stage("resolve"):
        version = serving.resolve(
            asked.model, pinned or asked.number, None if pinned else asked.alias
        )
    _annotate(version, asked, admission, None)
    annotate("mlgate.rows", rows)
    try:
        if version.task != task:
            raise Conflict(f"{version.ref} is a {version.task} model; this asks for {task}")
        with stage("admit"):
            gate.admit(admission, asked.target, rows, version)
        with stage(task):
            result = work(serving.predictors.get(version))
    except MlgateError as exc:
        _unanswered(serving, admission, asked.model, version.number, exc)
        raise
    with stage("meter"):
        return version, result, _settle(serving, admission, version, rows)


def _check_predicts(version: ModelVersion) -> None:
    if version.task == "generation":
        raise Conflict(
            f"{version.ref} generates rows and predicts nothing; "
            f'POST /v1/models/{version.model_name}/generate with {{"n": 10}}'
        )
    if version.task == "forecast":
        raise Conflict(
            f"{version.ref} forecasts a series; "
            f'POST /v1/models/{version.model_name}/forecast with {{"history": [...]}}'
        )


def _unanswered(
    serving: Serving, admission: Admission, model: str, version: int, exc: MlgateError
) -> None:
    """A call that raised `exc`: refused or failed, metered (the gate metered its own
    refusals) and observed as such."""
    outcome = outcome_of(exc)
    if not isinstance(exc, TooManyRequests | PaymentRequired):
        serving.gate.meter(admission, model, version, outcome)
    serving.observe(model, version, outcome, 0)


def _settle(
    serving: Serving, admission: Admission, version: ModelVersion, rows: int
) -> dict[str, str]:
    try:
        headers = serving.gate.settle(admission, version)
    except MlgateError as exc:  # the gate metered its refusal
        serving.observe(version.model_name, version.number, outcome_of(exc), 0)
        raise
    serving.observe(version.model_name, version.number, ANSWERED, rows)
    return headers
