"""OpenTelemetry traces of every call and of the work behind it (issue 39).

- `setup.py` reads the standard `OTEL_*` variables once per process and builds the SDK's
  provider and OTLP/HTTP exporter; unset, nothing here is imported on the hot path and every
  function below is a check of one global.
- `calls.py` is what the request path touches: a call's trace id, its sampling decision, and
  the stages it ran (authenticate, authorize, admit, decode, predict, explain, encode, meter,
  after-answer work), timed with two clock reads each and only when the call is recorded.
- `sink.py` turns recorded calls into spans in a thread, after the answer has gone.
- `span(...)` traces the work that is not a request: training jobs, batch chunks, rollouts'
  looks, exports and the usage export.
"""

from mlgate.tracing.calls import annotate, current, stage
from mlgate.tracing.setup import active, span

__all__ = ["active", "annotate", "current", "span", "stage"]
