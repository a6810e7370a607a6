"""Rollouts, as use cases: start one, look at its evidence, let it decide, stop it.

A look reads three things: the calls each side answered (counted by the serving processes,
rollouts/tally.py), the predictions each side logged since the start (every call of a running
rollout is logged, whatever the model's sample rate) and the labels fed back for them
(`feedback`). Guard rails act at once and always: a candidate that fails more than
`max_error_rate` of its calls, or whose p99 latency passes `max_latency_ratio` times the
incumbent's, ends the rollout (`rolled_back`) with the alias where it was. The sequential test's
verdict (rollouts/sequential.py) acts with `auto`: "better" promotes the candidate (an audited
alias move whose reason holds the numbers), "worse" rolls back. Past its deadline an undecided
rollout ends as `expired`, the alias unmoved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mlgate.access.audit import audited, record, records_its_own
from mlgate.errors import Conflict, MlgateError, NotFound
from mlgate.monitoring import webhook
from mlgate.outbound.client import Outbound
from mlgate.registry.aliases import promote
from mlgate.registry.model import PRODUCTION, ModelVersion, check_alias, same_label
from mlgate.rollouts import sequential
from mlgate.rollouts.model import RUNNING, Mode, Rollout, ShadowPair, SideCounts
from mlgate.tracing import span
from mlgate.uow import UnitOfWork

log = logging.getLogger("mlgate.rollouts")
MIN_GUARD_CALLS = 20  # candidate calls before the error-rate guard rail can act
MIN_LATENCY_CALLS = 100  # calls per side before the latency guard rail can act


@audited("rollouts.start", "{model}@{candidate}")
def start_rollout(
    uow: UnitOfWork,
    model: str,
    candidate: int,
    *,
    mode: Mode,
    share: float,
    actor: str,
    now: datetime,
    alias: str = PRODUCTION,
    alpha: float = 0.05,
    auto: bool = False,
    days: float = 14.0,
    max_error_rate: float = 0.05,
    max_latency_ratio: float = 3.0,
    min_agreement: float = 0.0,
    then_canary: float | None = None,
    outbound: Outbound | None = None,
) -> Rollout:
    """Try version `candidate` against the version `alias` points at now (a shadow with
    `then_canary`: when found better, a canary of that share follows it)."""
    check_alias(alias)
    with uow:
        if uow.models.get(model) is None:
            raise NotFound(f"no model named {model!r}")
        incumbent = uow.models.aliases(model).get(alias)
        if incumbent is None:
            raise Conflict(
                f"model {model!r} has no alias {alias!r}: a rollout tries a candidate against "
                f"the version an alias points at; promote one first "
                f"(mlgate models promote {model} <version> --alias {alias})"
            )
        current = _servable(uow, model, incumbent)
        tried = _servable(uow, model, candidate)
        if tried.task != current.task or tried.task not in ("classification", "regression"):
            raise Conflict(
                f"{tried.ref} ({tried.task}) cannot be tried against {current.ref} "
                f"({current.task}): a rollout compares two classifiers or two regressions"
            )
        if mode == "shadow" and _inputs(tried) != _inputs(current):
            raise Conflict(
                f"{tried.ref} takes other input columns than {current.ref}: a shadow scores the "
                "incumbent's calls as they came, so both must take the same columns; try it "
                "as a canary (each call is then read for the version that answers it)"
            )
        for other in uow.rollouts.of_model(model):
            if other.running and other.alias == alias:
                raise Conflict(
                    f"rollout {other.id} of {model}@{alias} is still running; stop it first "
                    f"(mlgate rollout stop {model} {other.id})"
                )
        rollout = uow.rollouts.add(
            Rollout(
                model=model, alias=alias, incumbent=incumbent, candidate=candidate, mode=mode,
                share=share, started_at=now, started_by=actor,
                deadline=now + timedelta(days=days), alpha=alpha, auto=auto,
                max_error_rate=max_error_rate, max_latency_ratio=max_latency_ratio,
                min_agreement=min_agreement, then_canary=then_canary,
            )
        )  # fmt: skip
        uow.commit()
    notify(uow, rollout, "rollout.started", outbound)
    return rollout


def notify(
    uow: UnitOfWork, rollout: Rollout, event: str, outbound: Outbound | None = None
) -> dict[str, Any] | None:
    """A signed event to the model's webhook (its monitoring settings'), where it has one:
    rollout.started, rollout.promoted, rollout.rolled_back, rollout.stopped, rollout.expired.
    The delivery's outcome is logged; a receiver that is down never stops the rollout.
    `outbound`: the server's client (its allow-list); without it, public addresses only."""
    with uow:
        settings = uow.monitoring.settings(rollout.model)
    if settings is None or not settings.webhook_url or not settings.webhook_secret:
        return None
    outcome = webhook.deliver(settings.webhook_url, settings.webhook_secret,
                              {"event": event, "rollout": rollout.to_json()},
                              outbound=outbound)  # fmt: skip
    if "error" in outcome:
        log.warning("rollout %s: the %s webhook failed: %s", rollout.id, event, outcome["error"])
    return outcome


def running_by_model(uow: UnitOfWork) -> dict[str, tuple[Rollout, ...]]:
    """Every running rollout, by its model: what the prediction path asks of each call (read
    once for all models, so that one read a second serves every model's calls)."""
    with uow:
        running = uow.rollouts.running()
    out: dict[str, tuple[Rollout, ...]] = {}
    for rollout in running:
        out[rollout.model] = (*out.get(rollout.model, ()), rollout)
    return out


def rollouts_of(uow: UnitOfWork, model: str) -> list[Rollout]:
    with uow:
        if uow.models.get(model) is None:
            raise NotFound(f"no model named {model!r}")
        return uow.rollouts.of_model(model)


def get_rollout(uow: UnitOfWork, model: str, rollout_id: int) -> Rollout:
    with uow:
        found = uow.rollouts.get(rollout_id)
    if found is None or found.model != model:
        raise NotFound(f"model {model!r} has no rollout {rollout_id}")
    return found


@audited("rollouts.stop", "{model} #{rollout_id}")
def stop_rollout(
    uow: UnitOfWork,
    model: str,
    rollout_id: int,
    *,
    actor: str,
    now: datetime,
    reason: str = "",
    outbound: Outbound | None = None,
) -> Rollout:
    """End a running rollout by hand: every call goes back to the incumbent, no alias moves."""
    rollout = get_rollout(uow, model, rollout_id)
    if not rollout.running:
        raise Conflict(f"rollout {rollout_id} of {model!r} already ended ({rollout.state})")
    ended = _end(uow, rollout, "stopped", reason or f"stopped by {actor}", now, None, outbound)
    if ended is None:
        raise Conflict(f"rollout {rollout_id} of {model!r} ended meanwhile")
    return ended


def look(uow: UnitOfWork, rollout: Rollout, *, points: int = 0) -> dict[str, Any]:
    """The evidence now: each side's calls, failures and p99, the shadow's agreement, and the
    test on the labels (two samples for a canary, pairs of answers for a shadow). With
    `points`, also the test as it stood after each of that many shares of the labelled rows,
    in the order they were predicted (the dashboard draws it)."""
    said = {"mlgate.model": rollout.model, "mlgate.rollout.id": rollout.id,
            "mlgate.rollout.mode": rollout.mode}  # fmt: skip
    with span("rollout look", said) as traced:
        out = _look(uow, rollout, points)
        if traced is not None:
            traced.set_attribute("mlgate.rollout.verdict", str(out["test"].get("verdict")))
        return out


def _look(uow: UnitOfWork, rollout: Rollout, points: int) -> dict[str, Any]:
    seen = _evidence(uow, rollout)
    test = _test(rollout, seen.observations)
    out: dict[str, Any] = {
        "metric": "absolute error" if seen.regression else "error rate (1 - accuracy)",
        "method": sequential.METHOD,
        "reference": sequential.REFERENCE,
        "test": test.to_json(),
        "sides": {side: _side(seen.counts.get(side, SideCounts()))
                  for side in ("incumbent", "candidate")},
    }  # fmt: skip
    if rollout.mode == "shadow":
        out["shadow"] = _shadow_summary(seen.counts, seen.errors, regression=seen.regression)
    if points:
        n = len(seen.observations)
        ends = sorted({max(1, round(n * k / points)) for k in range(1, points + 1)}) if n else []
        out["trajectory"] = [
            {"at": seen.observations[end - 1].at.isoformat(), "labelled": end,
             **_test(rollout, seen.observations[:end]).to_json()}
            for end in ends
        ]  # fmt: skip
    return out


@dataclass(frozen=True)
class _Observation:
    at: datetime  # when the labelled row was predicted
    incumbent: float | None  # its loss on the incumbent's side (both, for a shadow)
    candidate: float | None


@dataclass(frozen=True)
class _Evidence:
    counts: dict[str, SideCounts]
    pairs: list[ShadowPair]  # the shadow's kept pairs for labelled calls
    errors: list[str]  # a few of the shadow's failures
    observations: list[_Observation]  # labelled rows, in the order they were predicted
    regression: bool


def _evidence(uow: UnitOfWork, rollout: Rollout) -> _Evidence:
    """What the test reads: only the labelled calls of the rollout (labels first, then the
    logged calls they are for), so a look costs what was labelled, not what was served."""
    until = rollout.ended_at or datetime.max.replace(tzinfo=rollout.started_at.tzinfo)
    with uow:
        counts = uow.rollouts.counts(rollout.id or 0)
        version = uow.models.get_version(rollout.model, rollout.incumbent)
        labels = uow.monitoring.labels_since(rollout.model, rollout.started_at)
        wanted = sorted({label.request_id for label in labels})
        logged = [
            e for e in uow.monitoring.logged_requests(wanted).values()
            if rollout.started_at <= e.at < until
        ]  # fmt: skip
        pairs: list[ShadowPair] = []
        errors: list[str] = []
        if rollout.mode == "shadow":
            pairs = uow.rollouts.shadow(rollout.id or 0, [e.request_id for e in logged])
            errors = uow.rollouts.shadow_errors(rollout.id or 0, 5)
    by_label = {(label.request_id, label.row): label.label for label in labels}
    regression = version is not None and version.task == "regression"
    seen: list[_Observation] = []
    if rollout.mode == "shadow":
        copies = {p.request_id: p for p in pairs if p.predictions is not None}
        for entry in logged:
            pair = copies.get(entry.request_id)
            if entry.version != rollout.incumbent or pair is None or pair.predictions is None:
                continue
            for row, (mine, theirs) in enumerate(zip(entry.predictions, pair.predictions,
                                                     strict=False)):  # fmt: skip
                truth = by_label.get((entry.request_id, row))
                if truth is not None:
                    seen.append(
                        _Observation(
                            entry.at,
                            _loss(truth, mine, regression=regression),
                            _loss(truth, theirs, regression=regression),
                        )
                    )
    else:
        for entry in logged:
            if entry.version not in (rollout.incumbent, rollout.candidate):
                continue
            mine = entry.version == rollout.incumbent
            for row, predicted in enumerate(entry.predictions):
                truth = by_label.get((entry.request_id, row))
                if truth is not None:
                    loss = _loss(truth, predicted, regression=regression)
                    seen.append(_Observation(entry.at, loss if mine else None,
                                             None if mine else loss))  # fmt: skip
    seen.sort(key=lambda o: o.at)
    return _Evidence(counts, pairs, errors, seen, regression)


def _test(rollout: Rollout, seen: list[_Observation]) -> sequential.Look:
    a = np.array([o.incumbent for o in seen if o.incumbent is not None], dtype="float64")
    b = np.array([o.candidate for o in seen if o.candidate is not None], dtype="float64")
    if rollout.mode == "shadow":
        return sequential.paired(a, b, alpha=rollout.alpha)
    return sequential.two_samples(a, b, alpha=rollout.alpha)


def _shadow_summary(
    counts: dict[str, SideCounts], errors: list[str], *, regression: bool
) -> dict[str, Any]:
    scored = counts.get("candidate", SideCounts())
    rows = scored.compared
    return {
        "copied_calls": scored.calls,
        "skipped_calls": counts.get("skipped", SideCounts()).calls,  # the queue was full
        "failed_calls": scored.failed,
        "compared_rows": rows,
        "agreement": None if regression or not rows else scored.agreed / rows,
        "mean_score_difference": scored.score_diff / rows if rows else None,
        "errors": errors,
    }


@records_its_own
def decide(
    uow: UnitOfWork,
    rollout: Rollout,
    *,
    now: datetime,
    address: str = "server",
    outbound: Outbound | None = None,
) -> Rollout:
    """Look, keep the look, and act on it: guard rails always, the verdict with `auto`, the
    deadline. Returns the rollout as it now stands. Several processes may decide at once:
    only the one that ends the rollout moves the alias."""
    if not rollout.running:
        return rollout
    seen = look(uow, rollout)
    seen["at"] = now.isoformat()
    breach = _breach(rollout, seen["sides"], seen.get("shadow"))
    verdict = seen["test"]["verdict"]
    if breach is not None:
        ended = _end(uow, rollout, "rolled_back", breach, now, seen, outbound)
    elif rollout.auto and verdict == "worse":
        ended = _end(uow, rollout, "rolled_back", _reason("worse", seen), now, seen, outbound)
    elif verdict == "better" and rollout.then_canary is not None:
        ended = _pass_to_canary(uow, rollout, seen, now, outbound)
    elif rollout.auto and verdict == "better":
        ended = _promote(uow, rollout, seen, now, address, outbound)
    elif now >= rollout.deadline:
        ended = _end(uow, rollout, "expired", "the deadline passed undecided; the alias stays",
                     now, seen, outbound)  # fmt: skip
    else:
        with uow:  # only while it runs: a stop that came meanwhile stands
            current = uow.rollouts.get(rollout.id or 0)
            looked = None if current is None else replace(current, last_look=seen)
            saved = looked is not None and uow.rollouts.save_if_running(looked)
            if saved:
                uow.commit()
        if looked is not None and saved:
            return looked
        return get_rollout(uow, rollout.model, rollout.id or 0)
    return ended if ended is not None else get_rollout(uow, rollout.model, rollout.id or 0)


@records_its_own
def decide_all(
    uow: Callable[[], UnitOfWork],
    clock: Callable[[], datetime],
    outbound: Outbound | None = None,
) -> list[Rollout]:
    """One round over every running rollout (the server's referee calls it periodically)."""
    with uow() as work:
        running = work.rollouts.running()
    out = []
    for rollout in running:
        try:
            out.append(decide(uow(), rollout, now=clock(), outbound=outbound))
        except MlgateError:
            log.exception("rollout %s of %s: the look failed", rollout.id, rollout.model)
    return out


# -- helpers ----------------------------------------------------------------------------------


def _inputs(version: ModelVersion) -> list[tuple[str, str]]:
    return sorted((c.name, c.type) for c in version.columns)


def _servable(uow: UnitOfWork, model: str, number: int) -> ModelVersion:
    version = uow.models.get_version(model, number)
    if version is None:
        raise NotFound(f"model {model!r} has no version {number}")
    if version.archived_at is not None:
        raise Conflict(f"{version.ref} is archived and no longer served")
    return version


def _loss(label: Any, predicted: Any, *, regression: bool) -> float:
    if regression:
        return abs(float(label) - float(predicted))
    return 0.0 if same_label(label, predicted) else 1.0


def _side(counts: SideCounts) -> dict[str, Any]:
    return {
        "calls": counts.calls,
        "failed": counts.failed,
        "error_rate": counts.failed / counts.calls if counts.calls else None,
        "p99_ms": counts.p99_ms(),
    }


def _breach(
    rollout: Rollout, sides: dict[str, dict[str, Any]], shadow: dict[str, Any] | None
) -> str | None:
    candidate, incumbent = sides["candidate"], sides["incumbent"]
    agreement = None if shadow is None else shadow["agreement"]
    if (
        agreement is not None
        and shadow is not None
        and shadow["compared_rows"] >= MIN_LATENCY_CALLS
        and agreement < rollout.min_agreement
    ):
        return (
            f"guard rail: the candidate agreed with the incumbent on {agreement:.1%} of "
            f"{shadow['compared_rows']} rows, under {rollout.min_agreement:.1%}"
        )
    if candidate["calls"] >= MIN_GUARD_CALLS and candidate["error_rate"] > rollout.max_error_rate:
        return (
            f"guard rail: the candidate failed {candidate['failed']} of {candidate['calls']} "
            f"calls ({candidate['error_rate']:.1%}), above {rollout.max_error_rate:.1%}"
        )
    if (
        min(candidate["calls"], incumbent["calls"]) >= MIN_LATENCY_CALLS
        and candidate["p99_ms"] > rollout.max_latency_ratio * incumbent["p99_ms"]
    ):
        return (
            f"guard rail: the candidate's p99 latency {candidate['p99_ms']:.1f} ms is over "
            f"{rollout.max_latency_ratio:g}× the incumbent's {incumbent['p99_ms']:.1f} ms"
        )
    return None


def _reason(verdict: str, seen: dict[str, Any]) -> str:
    t = seen["test"]
    return (
        f"the sequential test found the candidate {verdict} at α = {t['alpha']:g}: "
        f"{seen['metric']} {t['incumbent_loss']:.4f} (incumbent, {t['incumbent_rows']} labelled "
        f"rows) against {t['candidate_loss']:.4f} (candidate, {t['candidate_rows']}); "
        f"difference {t['estimate']:+.4f}, always-valid interval [{t['low']:+.4f}, "
        f"{t['high']:+.4f}]"
    )


def _end(
    uow: UnitOfWork,
    rollout: Rollout,
    state: str,
    reason: str,
    now: datetime,
    seen: dict[str, Any] | None = None,
    outbound: Outbound | None = None,
) -> Rollout | None:
    """Set the end state if the rollout is still running (None: another process ended it)."""
    with uow:
        current = uow.rollouts.get(rollout.id or 0)
        if current is None or current.state != RUNNING:
            return None
        ended = replace(current, state=state, reason=reason, ended_at=now,
                        last_look=seen if seen is not None else current.last_look)  # fmt: skip
        if not uow.rollouts.save_if_running(ended):  # another process ended it meanwhile
            return None
        uow.commit()
    record(uow, at=now, actor=f"rollout:{rollout.id}", action=f"rollouts.{state}",
           target=f"{rollout.model}@{rollout.alias}", address="server", result="ok",
           detail={"rollout": rollout.id, "reason": reason})  # fmt: skip
    notify(uow, ended, f"rollout.{state}", outbound)
    return ended


def _pass_to_canary(
    uow: UnitOfWork,
    rollout: Rollout,
    seen: dict[str, Any],
    now: datetime,
    outbound: Outbound | None = None,
) -> Rollout | None:
    """A shadow found the candidate better: it ends as `passed`, and a canary of the same
    candidate follows, deciding as the shadow would have (auto or not)."""
    share = rollout.then_canary or 0.0
    reason = f"{_reason('better', seen)}; a canary of {share:.0%} of the callers follows"
    ended = _end(uow, rollout, "passed", reason, now, seen, outbound)
    if ended is None:
        return None
    try:
        canary = start_rollout(
            uow, rollout.model, rollout.candidate, mode="canary", share=share,
            actor=f"rollout:{rollout.id}", now=now, alias=rollout.alias, alpha=rollout.alpha,
            auto=rollout.auto, days=max((rollout.deadline - now).total_seconds() / 86400, 1.0),
            max_error_rate=rollout.max_error_rate, max_latency_ratio=rollout.max_latency_ratio,
            outbound=outbound,
        )  # fmt: skip
    except MlgateError as exc:
        with uow:
            uow.rollouts.save(replace(ended, reason=f"{reason}; it could not start: {exc}"))
            uow.commit()
    else:
        record(uow, at=now, actor=f"rollout:{rollout.id}", action="rollouts.start",
               target=f"{rollout.model}@{rollout.alias}", address="server", result="ok",
               detail={"rollout": canary.id, "after": rollout.id, "mode": "canary"})  # fmt: skip
    return get_rollout(uow, rollout.model, rollout.id or 0)


def _promote(
    uow: UnitOfWork,
    rollout: Rollout,
    seen: dict[str, Any],
    now: datetime,
    address: str,
    outbound: Outbound | None = None,
) -> Rollout | None:
    reason = _reason("better", seen)
    ended = _end(uow, rollout, "promoted", reason, now, seen, outbound)
    if ended is None:
        return None
    actor = f"rollout:{rollout.id}"
    try:
        promote(uow, rollout.model, rollout.candidate, rollout.alias, actor=actor,
                reason=reason, now=now)  # fmt: skip
    except MlgateError as exc:  # the alias moved by hand meanwhile: say so, move nothing
        with uow:
            uow.rollouts.save(replace(ended, state="stopped",
                                      reason=f"{reason}; not promoted: {exc}"))  # fmt: skip
            uow.commit()
        return get_rollout(uow, rollout.model, rollout.id or 0)
    record(uow, at=now, actor=actor, action="models.promote",
           target=f"{rollout.model}@{rollout.alias}", address=address, result="ok",
           detail={"version": rollout.candidate, "from": rollout.incumbent,
                   "reason": reason})  # fmt: skip
    return ended
