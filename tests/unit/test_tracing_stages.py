"""The per-stage histograms, counted off the request path a batch of traced calls at a time:
the same counts, sums and exemplars as one `observe()` a stage."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from mlgate.api import observe
from mlgate.tracing import setup
from mlgate.tracing.calls import Call, Ended, Stage, ended, read

pytestmark = pytest.mark.fast
T0 = 1_765_000_000_000_000_000


def samples(model: str) -> dict[tuple[str, str, str], float]:
    found = {}
    for family in REGISTRY.collect():
        if family.name != "mlgate_stage_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("model") == model:
                found[sample.name, sample.labels["stage"], sample.labels.get("le", "")] = (
                    sample.value
                )
    return found


def a_call(model: str, trace_id: int, took: dict[str, int]) -> Ended:
    call = Call(trace_id, 7, None, True, start_ns=T0)
    call.attributes["mlgate.model"] = model
    call.stages += [Stage(name, T0, T0 + ns) for name, ns in took.items()]
    return ended(call, "POST /x", T0 + 10**7, {"http.response.status_code": 200}, 200)


def test_a_batch_is_counted_as_one_observation_a_stage() -> None:
    model = "stages-under-test"
    calls = [
        a_call(model, 1, {"decode": 50_000, "predict": 300_000}),  # 50 us, 300 us
        a_call(model, 2, {"decode": 50_000, "predict": 2_000_000}),  # 50 us, 2 ms
        a_call(model, 3, {"predict": 100_000}),  # exactly a bound: its bucket, as observe() says
    ]
    observe._unobserved.extend(calls)
    observe.observe_stages()
    got = samples(model)
    assert got["mlgate_stage_duration_seconds_count", "decode", ""] == 2
    assert got["mlgate_stage_duration_seconds_sum", "decode", ""] == pytest.approx(100e-6)
    assert got["mlgate_stage_duration_seconds_bucket", "decode", "0.0001"] == 2
    assert got["mlgate_stage_duration_seconds_count", "predict", ""] == 3
    assert got["mlgate_stage_duration_seconds_sum", "predict", ""] == pytest.approx(2.4e-3)
    assert got["mlgate_stage_duration_seconds_bucket", "predict", "0.0001"] == 1
    assert got["mlgate_stage_duration_seconds_bucket", "predict", "0.0005"] == 2
    assert got["mlgate_stage_duration_seconds_bucket", "predict", "0.0025"] == 3
    # each bucket reached has the batch's latest call in it as its exemplar
    child, _ = observe._stage_seconds(model, "predict")
    exemplars = {b.get_exemplar().labels["trace_id"] for b in child._buckets if b.get_exemplar()}
    assert exemplars == {f"{1:032x}", f"{2:032x}", f"{3:032x}"}
    # a histogram child without the values this adds to directly gets one observe() a value
    fallback: list[tuple[float, object]] = []

    class Plain:
        def observe(self, value: float, exemplar: object = None) -> None:
            fallback.append((value, exemplar))

    observe._add(Plain(), 1.0, [0, 2] + [0] * 11, {1: ("ab" * 16, 0.0002)})
    assert fallback == [(0.0002, {"trace_id": "ab" * 16}), (0.00025, None)]


def test_metrics_count_the_calls_answered_before_the_scrape() -> None:
    model = "scraped-under-test"
    observe._unobserved.append(a_call(model, 9, {"encode": 20_000}))
    body, _ = observe.metrics_text()
    assert f'mlgate_stage_duration_seconds_count{{model="{model}",stage="encode"}} 1.0' in (
        body.decode()
    )


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(None, 1.0), ("5000", 5.0), ("250", 0.25), ("0", 0.01), ("soon", 1.0), ("9e9", 60.0)],
)
def test_the_calls_are_sent_as_often_as_otel_bsp_schedule_delay_says(
    given: str | None, seconds: float
) -> None:
    env = {} if given is None else {"OTEL_BSP_SCHEDULE_DELAY": given}
    assert setup._delay(env) == seconds


def test_an_ended_call_waits_for_its_spans_out_of_the_collectors_sight() -> None:
    """A recorded call waits up to a second for its spans: kept as objects, calls at 100%
    sampling survived into the oldest generation and set off full collections of the heap."""
    import gc

    call = Call(1, 2, None, True, start_ns=T0)
    call.attributes.update({"mlgate.model": "churn", "mlgate.rows": 3})
    call.stages += [Stage("decode", T0, T0 + 5, {"mlgate.rows": 3}), Stage("predict", T0, T0 + 9)]
    call.stages[1].error = "ValueError"
    done = ended(call, "POST /x", T0 + 10, {"http.response.status_code": 200}, 200)
    gc.collect()  # the collector's first look: the attributes' tuples leave its lists
    gc.collect()  # its second (a young call's second generation): the call's
    assert not gc.is_tracked(done)
    back = read(done)  # and all of it read back
    assert back.attributes == {"mlgate.model": "churn", "mlgate.rows": 3}
    assert back.said == {"http.response.status_code": 200} and back.name == "POST /x"
    assert back.stages == [
        ("decode", T0, T0 + 5, {"mlgate.rows": 3}, None), ("predict", T0, T0 + 9, {}, "ValueError"),
    ]  # fmt: skip
