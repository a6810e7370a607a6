"""Serving benchmark: mlgate with keys, grants, a plan and metering on, against a bare Starlette
endpoint that calls the same in-process predictor with no checks, in the same run.

    .venv/bin/python bench/serve.py [--seconds 10] [--rounds 3] [--workers 1 2] [--models 20]

Trains an XGBoost classifier (100 trees, depth 6, 20 numeric features) and a logistic
regression in a temporary home, gives a consumer on a plan a key and grants, and starts, for each
worker count, the bare endpoint under uvicorn and under granian (one model thread each), and
`mlgate serve` exactly as users start it: its defaults, the in-process limiter with one worker,
Redis with more (the in-process limiter cannot count across processes). The load comes from wrk
(Debian's package `wrk`) in a second process: closed loop, keep-alive, loopback; single-row at
concurrency 1 and 16, 1,000-row at concurrency 1, each for --seconds, --rounds times with the
three servers interleaved (the median run is shown: this host's speed drifts); and the same
1,000 rows to mlgate's Open Inference Protocol route as JSON and as binary tensors (Triton's
extension). It prints req/s, p50 and p99, mlgate's throughput as a ratio of each bare
endpoint's, and the resident memory of each mlgate worker with --models models loaded. Never
part of the tests.

`--tracing`: only one-row calls to xgb at c=1 and c=16, 1 worker: bare uvicorn and three
`mlgate serve` with their defaults side by side, tracing off (no OTEL_* variables), on at 1%
(`parentbased_traceidratio`, 0.01) and on at 100% (`always_on`), each exporting over OTLP/HTTP
to its own receiver in this process (it answers 200 and keeps the bodies; they are decoded once
the servers have stopped, so the bench's own CPU stays out of the loads), interleaved round by
round. Targets (issue 39): 1% costs at most 3% of off's throughput, 100% at most 15%. That off
costs nothing is measured against the code before tracing: `--single-row OLD_CHECKOUT/src`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.helpers import SERVERS, env_for, free_port, running_server

from mlgate.access.accounts import create_consumer
from mlgate.access.grants import add_grant
from mlgate.access.service import create_key
from mlgate.bootstrap import bootstrap
from mlgate.plans.service import create_plan, make_plan, subscribe
from mlgate.registry.aliases import promote
from mlgate.rollouts.service import get_rollout, look, start_rollout, stop_rollout
from mlgate.settings import Settings
from mlgate.sources import demo
from mlgate.sources.service import add_source
from mlgate.training.service import TrainSpec, train_model

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [f"f{i}" for i in range(20)]


def synthetic(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, len(FEATURES)))
    logit = x[:, :8] @ rng.normal(size=8) + 0.5 * x[:, 8] * x[:, 9]
    frame = pd.DataFrame(x.round(4), columns=FEATURES)
    frame["label"] = (logit + rng.logistic(size=n_rows) > 0).astype(int)
    return frame


def prepare(home: Path, extra_models: int) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Train the models; return the consumer's key, 1,000 feature rows and the model names."""
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(home)}))
    frame = synthetic(20_000)
    database = home / "bench.db"
    demo.write_sqlite(database, frame, table="bench")
    now = services.clock()
    add_source(
        services.uow(),
        services.open_source,
        name="bench",
        url=f"sqlite:///{database}",
        cwd=home,
        now=now,
    )
    jobs = [
        ("xgb", "xgboost", {"n_estimators": 100, "max_depth": 6}),
        ("lr", "logistic_regression", {}),
    ]
    jobs += [(f"extra{i}", "logistic_regression", {}) for i in range(extra_models)]
    for name, algorithm, params in jobs:
        spec = TrainSpec(
            name, "bench", "label", algorithm, table="bench", params=params or None, report=False
        )
        train_model(
            services.uow(), services.artifacts, services.open_source, spec, now=services.clock
        )
    # xgb v2 (another seed) beside v1 at production: the candidate of the rollout figures
    spec = TrainSpec("xgb", "bench", "label", "xgboost", table="bench", report=False, seed=7,
                     params={"n_estimators": 100, "max_depth": 6})  # fmt: skip
    train_model(services.uow(), services.artifacts, services.open_source, spec, now=services.clock)
    promote(services.uow(), "xgb", 1, "production", actor="bench", now=now)
    create_consumer(services.uow(), by=None, name="bench", description="", now=now)
    plan = make_plan(
        "bench",
        now,
        per_second=1_000_000,
        requests_per_month=10**12,
        rows_per_month=10**15,
        explain=True,
    )
    create_plan(services.uow(), plan, by=None)
    subscribe(services.uow(), by=None, consumer="bench", plan="bench", now=now)
    names = [name for name, _, _ in jobs]
    for name in names:
        add_grant(
            services.uow(),
            by=None,
            subject_kind="consumer",
            subject="bench",
            target=name,
            role="consumer",
            now=now,
            actor="bench",
        )
    _, token = create_key(
        services.uow(),
        services.server_secret,
        by=None,
        owner_kind="consumer",
        owner="bench",
        name="bench",
        now=now,
    )
    services.close()
    rows = frame[FEATURES].head(1_000).to_dict(orient="records")
    return token, rows, names


@contextlib.contextmanager
def bare_server(home: Path, workers: int, models: list[str], server: str) -> Iterator[str]:
    """The bare endpoint under uvicorn or granian, `workers` processes, one model thread."""
    port = free_port()
    env = env_for(home, BARE_MODELS=",".join(models), OMP_NUM_THREADS="1")
    log = (home.parent / f"bare-{port}.log").open("w")
    if server == "uvicorn":
        command = ["-m", "uvicorn", "--factory", "bench.bare_app:create", "--port", str(port),
                   "--workers", str(workers), "--no-access-log",
                   "--log-level", "warning"]  # fmt: skip
    else:
        command = ["-m", "granian", "--interface", "asgi", "--factory", "--no-ws",
                   "--port", str(port), "--workers", str(workers), "--no-access-log",
                   "--log-level", "warning", "bench.bare_app:create"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(base, timeout=1)
                break
            time.sleep(0.1)
        SERVERS[base] = process.pid
        yield base
    finally:
        SERVERS.pop(base, None)
        process.terminate()
        process.wait(timeout=15)
        log.close()


def wrk(
    url: str,
    token: str,
    body: bytes,
    clients: int,
    seconds: float,
    tmp: Path,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    payload = tmp / "body.bin"
    payload.write_bytes(body)  # read by the script as bytes: binary tensors are not text
    script = tmp / "post.lua"
    lines = [
        'wrk.method = "POST"',
        f'local f = io.open("{payload}", "rb"); wrk.body = f:read("*all"); f:close()',
        f'wrk.headers["Authorization"] = "Bearer {token}"',
    ]
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency", "-s"]
        + [str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    sent = re.search(r"(\d+) requests in", out)
    return {
        "requests": float(sent.group(1)) if sent else 0.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "failed": float(failed.group(1)) if failed else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def oip_bodies(rows: list[dict[str, Any]]) -> tuple[bytes, bytes, int]:
    """The rows as one [n, 20] FP64 tensor: a JSON body, and a binary one (with the length of
    its JSON part), built by Triton's own client code."""
    import tritonclient.http as triton

    matrix = np.array([[row[f] for f in FEATURES] for row in rows], dtype="float64")
    bodies = []
    for binary in (False, True):
        tensor = triton.InferInput("x", list(matrix.shape), "FP64")
        tensor.set_data_from_numpy(matrix, binary_data=binary)
        outputs = [triton.InferRequestedOutput(o, binary_data=binary)
                   for o in ("predict", "predict_proba")]  # fmt: skip
        body, json_size = triton.InferenceServerClient.generate_request_body([tensor], outputs)
        bodies.append((body, json_size))
    (plain, _), (binary_body, json_size) = bodies
    return plain, binary_body, int(json_size)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (its own latencies with it); failures summed."""
    middle = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return middle | {"failed": sum(r["failed"] for r in runs)}


def _figures(r: dict[str, float]) -> str:
    return f"{r['rps']:6.0f} req/s p50 {r['p50_ms']:6.2f} p99 {r['p99_ms']:6.2f} ms"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def rss_mib(pid: int) -> list[float]:
    """Resident memory of the server's worker processes (the process itself with one worker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    pids = [int(c) for c in children if "spawn_main" in _cmdline(int(c))] or [pid]
    return [_rss(p) / 1024 for p in pids]


def cpu_seconds(pid: int) -> float:
    """CPU time the process and its children have run so far, every thread (schedstat's
    nanoseconds): a server's cost per call that other work on a shared host does not blur as
    much as its throughput."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0]) / 1e9
                with contextlib.suppress(OSError):
                    pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text()


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return 0.0


def explained(
    base: str, model: str, token: str, rows: list[dict[str, Any]], args: Any, tmp: Path
) -> None:
    """The same call with and without `explain`, interleaved: what explaining adds (targets:
    at most 1 ms p50 for one row; 1,000 XGBoost rows explained in at most 50 ms p50)."""
    url = f"{base}/v1/models/{model}/predict"
    for label, batch in (("1 row", rows[:1]), ("1000 rows", rows)):
        plain = json.dumps({"rows": batch}).encode()
        asked = json.dumps({"rows": batch, "explain": True}).encode()
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "explained": []}
        for _ in range(args.rounds):
            for who, body in (("plain", plain), ("explained", asked)):
                wrk(url, token, body, 1, 1, tmp)
                runs[who].append(wrk(url, token, body, 1, args.seconds, tmp))
        p, e = _median(runs["plain"]), _median(runs["explained"])
        failed = p["failed"] + e["failed"]
        print(
            f"  {model:>3} {label:>9} c=1   unexplained {_figures(p)} | explained {_figures(e)}"
            f" | explaining adds {e['p50_ms'] - p['p50_ms']:6.2f} ms p50"
            + (f"  ({failed:.0f} failed)" if failed else "")
        )


def rollouts(home: Path, token: str, rows: list[dict[str, Any]], args: Any, tmp: Path) -> None:
    """Single-row calls at c=16 to xgb@production with no rollout, with a shadow copying every
    call to v2, and with a canary of half the callers, interleaved (target: each at least 0.9×
    no rollout). The bench has one consumer: a canary puts all its calls on one side."""
    services = bootstrap(Settings.from_env({"MLGATE_HOME": str(home)}))
    one = json.dumps({"rows": rows[:1]}).encode()
    setups: dict[str, tuple[str, float] | None] = {
        "no rollout": None, "shadow 1.0": ("shadow", 1.0), "canary 0.5": ("canary", 0.5),
    }  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in setups}
    notes: dict[str, str] = {}
    with running_server(home) as ours:
        url = f"{ours}/v1/models/xgb/predict"
        for _ in range(args.rounds):
            for label, setup in setups.items():
                rollout = None
                if setup is not None:
                    mode, share = setup
                    rollout = start_rollout(
                        services.uow(), "xgb", 2, mode=mode,  # type: ignore[arg-type]
                        share=share, actor="bench", now=services.clock(),
                    )  # fmt: skip
                    time.sleep(1.5)  # the server's one-second cache of running rollouts
                wrk(url, token, one, 16, 1, tmp)
                runs[label].append(wrk(url, token, one, 16, args.seconds, tmp))
                if rollout is not None:
                    time.sleep(1.5)  # its counts reach the database
                    seen = look(services.uow(), rollout)
                    if "shadow" in seen:
                        notes[label] = (f"{seen['shadow']['copied_calls']:,} copied, "
                                        f"{seen['shadow']['skipped_calls']:,} skipped")  # fmt: skip
                    else:
                        sides = seen["sides"]
                        notes[label] = ("the bench's consumer on the "
                                        + ("candidate" if sides["candidate"]["calls"]
                                           else "incumbent"))  # fmt: skip
                    ended = get_rollout(services.uow(), "xgb", rollout.id or 0)
                    if ended.running:
                        stop_rollout(services.uow(), "xgb", rollout.id or 0, actor="bench",
                                     now=services.clock())  # fmt: skip
                    else:
                        notes[label] += f"; it ended by itself: {ended.reason}"
                    time.sleep(1.5)
    services.close()
    base = _median(runs["no rollout"])
    for label in setups:
        m = _median(runs[label])
        note = f"  ({notes[label]}, last round)" if label in notes else ""
        print(
            f"  xgb 1 row c=16 {label:>10}: {_figures(m)} | ratio {m['rps'] / base['rps']:4.2f}"
            + note
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each load")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved runs per load; the median is shown"
    )
    parser.add_argument("--models", type=int, default=20, help="models loaded for the RSS figure")
    parser.add_argument(
        "--redis", default=os.environ.get("MLGATE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--only-explain", action="store_true", help="only the explained calls (1 worker)"
    )
    parser.add_argument(
        "--only-rollouts", action="store_true", help="only the shadow and canary figures"
    )
    parser.add_argument(
        "--single-row",
        metavar="BASELINE_SRC",
        help="only the one-row loads on xgb (1 worker), interleaved with a second `mlgate serve` "
        "run from BASELINE_SRC (another checkout's src/): a change's cost, in one sitting",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="only the one-row loads on xgb (1 worker) with tracing off, at 1%% and at 100%%",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/serve.py needs wrk: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        token, rows, names = prepare(home, max(args.models - 2, 0))
        one = json.dumps({"rows": rows[:1]}).encode()
        thousand = json.dumps({"rows": rows}).encode()
        loads = [("1 row", one, 1), ("1 row", one, 16), ("1000 rows", thousand, 1)]
        print(
            f"mlgate serving benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cores, "
            f"wrk {args.seconds:g} s per load, loopback"
        )
        plain_oip, binary_oip, json_size = oip_bodies(rows)
        if args.only_rollouts:
            print("\n1 worker; xgb@production with and without a rollout of v2")
            rollouts(home, token, rows, args, tmp)
            return
        if args.single_row:
            single_row(home, token, one, args, tmp)
            return
        if args.tracing:
            tracing(home, token, one, args, tmp)
            return
        if args.only_explain:
            with running_server(home) as ours:
                print("\n1 worker; explained calls against the same calls unexplained")
                for model in ("xgb", "lr"):
                    explained(ours, model, token, rows, args, tmp)
            return
        for workers in args.workers:
            limiter = "in-process limiter" if workers == 1 else "Redis limiter"
            env: dict[str, str] = {}  # `mlgate serve` as users start it: its own thread counts
            if workers > 1:
                env["MLGATE_REDIS_URL"] = args.redis
                env["MLGATE_REDIS_PREFIX"] = f"bench-{os.getpid()}:"
            print(f"\n{workers} worker(s); mlgate with key, grant, plan, metering, {limiter}")
            for model in ("xgb", "lr"):
                with (
                    bare_server(home, workers, [model], "uvicorn") as bare,
                    bare_server(home, workers, [model], "granian") as granian,
                    running_server(home, "--workers", str(workers), **env) as ours,
                ):
                    for label, body, clients in loads:
                        bases = (("uvicorn", bare), ("granian", granian), ("mlgate", ours))
                        rounds: dict[str, list[dict[str, float]]] = {w: [] for w, _ in bases}
                        for _ in range(args.rounds):  # interleaved: the host's drift hits all
                            for who, base in bases:
                                url = f"{base}/v1/models/{model}/predict"
                                wrk(url, token, body, clients, 1, tmp)  # warm-up
                                rounds[who].append(
                                    wrk(url, token, body, clients, args.seconds, tmp)
                                )
                        figures = {who: _median(runs) for who, runs in rounds.items()}
                        b, g, m = figures["uvicorn"], figures["granian"], figures["mlgate"]
                        failed = m["failed"] + b["failed"] + g["failed"]
                        print(
                            f"  {model:>3} {label:>9} c={clients:<2}  bare uvicorn {_figures(b)}"
                            f" | bare granian {_figures(g)} | mlgate {_figures(m)}"
                            f" | ratio {m['rps'] / b['rps']:4.2f} (uvicorn)"
                            f" {m['rps'] / g['rps']:4.2f} (granian)"
                            + (f"  ({failed:.0f} failed)" if failed else "")
                        )
                    if workers == 1:
                        explained(ours, model, token, rows, args, tmp)
                    if model == "xgb":
                        url = f"{ours}/v2/models/{model}/infer"
                        for kind, body, headers in (
                            ("JSON", plain_oip, {"Content-Type": "application/json"}),
                            ("binary", binary_oip,
                             {"Inference-Header-Content-Length": str(json_size)}),
                        ):  # fmt: skip
                            wrk(url, token, body, 1, 1, tmp, headers)
                            r = wrk(url, token, body, 1, args.seconds, tmp, headers)
                            failed_note = f"  ({r['failed']:.0f} failed)" if r["failed"] else ""
                            print(f"  {model:>3} OIP 1000 rows, {kind:>6} tensors c=1  mlgate "
                                  f"{_figures(r)}{failed_note}")  # fmt: skip
            with running_server(home, "--workers", str(workers), **env) as ours:
                with httpx.Client(base_url=ours, headers={"Authorization": f"Bearer {token}"}) as c:
                    for _ in range(4 * workers):  # each worker gets several calls per model
                        for name in names:
                            r = c.post(f"/v1/models/{name}/predict", json={"rows": rows[:2]})
                            r.raise_for_status()
                sizes = rss_mib(SERVERS[ours])
                print(
                    f"  RSS with {len(names)} models loaded: "
                    + ", ".join(f"{s:.0f} MiB" for s in sizes)
                    + " per worker"
                )


def single_row(home: Path, token: str, body: bytes, args: argparse.Namespace, tmp: Path) -> None:
    """One-row calls to xgb at c=1 and c=16: bare uvicorn, mlgate from this tree and mlgate
    from `args.single_row`, interleaved round by round (the median run is shown)."""
    baseline = str(Path(args.single_row).resolve())
    print(f"\n1 worker, one row; mlgate from this tree against mlgate from {baseline}")
    with (
        bare_server(home, 1, ["xgb"], "uvicorn") as bare,
        running_server(home) as ours,
        running_server(home, PYTHONPATH=baseline) as theirs,
    ):
        for clients in (1, 16):
            bases = (("bare", bare), ("baseline", theirs), ("this tree", ours))
            rounds: dict[str, list[dict[str, float]]] = {w: [] for w, _ in bases}
            for _ in range(args.rounds):
                for who, base in bases:
                    url = f"{base}/v1/models/xgb/predict"
                    wrk(url, token, body, clients, 1, tmp)  # warm-up
                    rounds[who].append(wrk(url, token, body, clients, args.seconds, tmp))
            figures = {who: _median(runs) for who, runs in rounds.items()}
            b, t, o = figures["bare"], figures["baseline"], figures["this tree"]
            print(
                f"  c={clients:<2} bare {_figures(b)} | baseline {_figures(t)} | this tree "
                f"{_figures(o)} | this tree / baseline {o['rps'] / t['rps']:4.2f}"
            )


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint in this process: 200 to every POST, the bodies kept and
    decoded only when asked (`spans()`), after the loads."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.received = 0  # bytes on the wire
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the exporter keeps its connection

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with lock:
                    receiver.received += int(self.headers["Content-Length"])
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> tuple[int, int]:
        """(server spans, all spans) received: calls traced, and their spans."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        calls = spans = 0
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans += 1
                        calls += span.kind == Span.SPAN_KIND_SERVER
        return calls, spans

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def tracing(home: Path, token: str, body: bytes, args: argparse.Namespace, tmp: Path) -> None:
    """One-row calls to xgb at c=1 and c=16: bare uvicorn, and `mlgate serve` with tracing off,
    at 1% and at 100%, interleaved round by round (the median run is shown); then what each
    receiver got against the calls its server answered."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]  # "off" is a server with no OTEL_* variable at all
    receivers = {who: OtlpReceiver() for who in ("off", "1%", "100%")}
    samplers = {
        "1%": {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        "100%": {"OTEL_TRACES_SAMPLER": "always_on"},
    }
    envs: dict[str, dict[str, str]] = {"off": {}}
    for who, sampler in samplers.items():
        envs[who] = {"OTEL_EXPORTER_OTLP_ENDPOINT": receivers[who].endpoint,
                     "OTEL_SERVICE_NAME": f"mlgate-bench-{who}", **sampler}  # fmt: skip
    print("\n1 worker, one row; mlgate with tracing off, at 1% and at 100% (OTLP/HTTP to a "
          "receiver in the bench's process)")  # fmt: skip
    sent = dict.fromkeys(envs, 0.0)
    with contextlib.ExitStack() as stack:
        bare = stack.enter_context(bare_server(home, 1, ["xgb"], "uvicorn"))
        servers = {who: stack.enter_context(running_server(home, **env))
                   for who, env in envs.items()}  # fmt: skip
        for clients in (1, 16):
            bases = (("bare", bare), *servers.items())
            rounds: dict[str, list[dict[str, float]]] = {w: [] for w, _ in bases}
            for _ in range(args.rounds):
                for who, base in bases:
                    url = f"{base}/v1/models/xgb/predict"
                    warm = wrk(url, token, body, clients, 1, tmp)  # warm-up
                    before = cpu_seconds(SERVERS[base])
                    rounds[who].append(wrk(url, token, body, clients, args.seconds, tmp))
                    spent = cpu_seconds(SERVERS[base]) - before
                    rounds[who][-1]["cpu_us"] = spent / max(rounds[who][-1]["requests"], 1) * 1e6
                    if who in sent:
                        sent[who] += warm["requests"] + rounds[who][-1]["requests"]
            m = {who: _median(runs) for who, runs in rounds.items()}
            cpu = {who: sorted(r["cpu_us"] for r in runs)[len(runs) // 2]
                   for who, runs in rounds.items()}  # fmt: skip
            off = m["off"]
            failed = sum(r["failed"] for r in m.values())
            print(
                f"  c={clients:<2} bare {_figures(m['bare'])} | CPU {cpu['bare']:4.0f} us/call\n"
                + "".join(
                    f"       {who:>4} {_figures(m[who])} | CPU {cpu[who]:4.0f} us/call\n"
                    for who in envs
                )  # fmt: skip
                + f"       off / bare {off['rps'] / m['bare']['rps']:4.2f}"
                f" | 1% / off {m['1%']['rps'] / off['rps']:5.3f} (target >= 0.97)"
                f" | 100% / off {m['100%']['rps'] / off['rps']:5.3f} (target >= 0.85)"
                + (f"  ({failed:.0f} failed)" if failed else "")
                + f"\n       CPU a call, off / traced (the throughput a saturated worker keeps):"
                f" 1% {cpu['off'] / cpu['1%']:5.3f} | 100% {cpu['off'] / cpu['100%']:5.3f}"
            )
    # the servers have stopped (and flushed their spans): what reached each receiver
    for who, receiver in receivers.items():
        calls, spans = receiver.spans()
        receiver.stop()
        share = calls / sent[who] if sent[who] else 0.0
        print(
            f"  {who:>4}: {sent[who]:,.0f} calls, {calls:,} traced ({share:.2%}), {spans:,} spans, "
            f"{receiver.received / 1e6:.1f} MB in {len(receiver.bodies):,} posts"
        )


if __name__ == "__main__":
    main()
