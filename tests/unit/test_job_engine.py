"""The job engine (jobs/runner.py) over the in-memory fakes, with a kind of job made up here
whose work waits for the test between its steps (no sleep: the test says when). The heartbeat
names this process's queued and running jobs and no one else's; a job whose process is gone is
failed or taken over, a live neighbour's never; a cancel request stops the work at its next
step; how the work ends is written once. Training's and batches' own rules over the same
engine: tests/unit/test_batch_rules.py, tests/integration/test_jobs_runner.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from mlgate.errors import InvalidInput
from mlgate.jobs.model import Job
from mlgate.jobs.runner import (
    STALE_AFTER,
    JobRunner,
    Outcome,
    Run,
    Work,
    get_job,
    new_job,
    request_cancel,
)
from mlgate.processes import this_process
from tests.fakes import FixedClock, InMemoryUnitOfWork, in_memory_uow_factory

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEAD = this_process().rsplit(":", 1)[0] + ":999999"  # this host, a pid that is not running
WAIT = 30  # seconds: only reached when the engine is broken


@dataclass
class Paced:
    """A kind's work: `steps` reports, each once the test calls `step()`, which returns once
    the report is saved (or refused: a cancel)."""

    steps: int = 2
    started: threading.Event = field(default_factory=threading.Event)
    _go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    _done: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def __call__(self, run: Run) -> Outcome:
        self.started.set()
        for k in range(self.steps):
            assert self._go.acquire(timeout=WAIT)
            try:
                run.report(stage=f"step {k}", progress=(k + 1) / (self.steps + 1), line=f"step {k}")
            finally:
                self._done.release()
        return Outcome("succeeded", "done", result={"steps": self.steps})

    def step(self) -> None:
        self._go.release()
        assert self._done.acquire(timeout=WAIT)

    def release(self) -> None:
        for _ in range(self.steps):
            self._go.release()


@dataclass
class Engine:
    uow: Callable[[], InMemoryUnitOfWork]
    clock: FixedClock
    runners: list[JobRunner]
    works: list[Paced]

    def runner(self, kind: str = "toy") -> JobRunner:
        made = JobRunner(self.uow, self.clock, kind=kind, name="test", start_line="started")
        self.runners.append(made)
        return made

    def paced(self, steps: int = 2) -> Paced:
        self.works.append(Paced(steps))
        return self.works[-1]

    def job(self, job_id: str) -> Job:
        return get_job(self.uow(), job_id)

    def store(self, *jobs: Job) -> None:
        with self.uow() as uow:
            for job in jobs:
                uow.jobs.add(job)
            uow.commit()


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = Engine(in_memory_uow_factory(), FixedClock(NOW), [], [])
    yield made
    for work in made.works:  # a failed test leaves no thread waiting
        work.release()
    for runner in made.runners:
        runner.shutdown(wait=True, cancel=False)


def toy(now: datetime = NOW) -> Job:
    return new_job("toy", {"what": "a toy"}, now, log=("queued",))


def test_a_job_runs_to_its_outcome_and_says_how_far_it_is(engine: Engine) -> None:
    runner, work = engine.runner(), engine.paced()
    job = runner.submit(toy(), work)
    assert work.started.wait(WAIT)
    work.step()
    running = engine.job(job.id)
    assert (running.state, running.stage, running.progress) == ("running", "step 0", 1 / 3)
    assert running.log == ("queued", "started", "step 0") and running.started_at == NOW
    engine.clock.advance(seconds=5)
    work.step()
    done = runner.wait(job.id, timeout=WAIT)
    assert (done.state, done.progress, done.result, done.error) == (
        "succeeded", 1.0, {"steps": 2}, None,
    )  # fmt: skip
    assert done.log[-2:] == ("step 1", "done") and done.finished_at == NOW + timedelta(seconds=5)


def test_the_heartbeat_names_this_process_s_queued_and_running_jobs_only(
    engine: Engine,
) -> None:
    neighbour = replace(toy(), state="running", owner="replica-2:77")
    engine.store(neighbour)
    runner, first, second = engine.runner(), engine.paced(1), engine.paced(1)
    running = runner.submit(toy(), first)
    queued = runner.submit(toy(), second)  # one thread: it waits for the first
    assert first.started.wait(WAIT)
    later = engine.clock.advance(seconds=10)
    runner.beat()
    assert engine.job(running.id).heartbeat_at == later
    assert engine.job(queued.id).heartbeat_at == later
    assert engine.job(neighbour.id).heartbeat_at == NOW
    first.step()
    assert runner.wait(running.id, timeout=WAIT).state == "succeeded"
    engine.clock.advance(seconds=10)
    runner.beat()  # a finished job is nobody's to beat for
    assert engine.job(running.id).heartbeat_at == later
    second.step()
    assert runner.wait(queued.id, timeout=WAIT).state == "succeeded"


def _gone_and_alive(engine: Engine) -> dict[str, Job]:
    """Running jobs of every sort of owner, last heard from at NOW; the clock then moves on."""
    base = replace(toy(), state="running", started_at=NOW)
    jobs = {
        "dead pid": replace(base, id="a" * 32, owner=DEAD),
        "silent host": replace(base, id="b" * 32, owner="replica-3:77"),
        "beating host": replace(base, id="c" * 32, owner="replica-2:77"),
        "nobody": replace(base, id="d" * 32, owner=""),  # from before jobs named their process
        "another kind": replace(base, id="e" * 32, owner=DEAD, kind="other"),
        "done": replace(base, id="f" * 32, owner=DEAD, state="succeeded"),
    }
    engine.store(*jobs.values())
    engine.clock.advance(seconds=STALE_AFTER.total_seconds() + 1)
    with engine.uow() as uow:
        uow.jobs.beat(["c" * 32], engine.clock())
        uow.commit()
    return jobs


def test_the_jobs_of_gone_processes_are_failed_and_a_live_neighbour_s_are_left(
    engine: Engine,
) -> None:
    jobs = _gone_and_alive(engine)
    failed = engine.runner().fail_gone("the server stopped")
    gone_ids = sorted(jobs[name].id for name in ("dead pid", "silent host", "nobody"))
    assert sorted(job.id for job in failed) == gone_ids
    states = {name: engine.job(job.id).state for name, job in jobs.items()}
    assert states == {
        "dead pid": "failed", "silent host": "failed", "nobody": "failed",
        "beating host": "running", "another kind": "running", "done": "succeeded",
    }  # fmt: skip
    gone = engine.job(jobs["dead pid"].id)
    assert (gone.error, gone.finished_at) == ("the server stopped", engine.clock())


def test_the_jobs_of_gone_processes_are_taken_over_and_finished_here(engine: Engine) -> None:
    jobs = _gone_and_alive(engine)
    seen: list[Job] = []

    def carry_on(run: Run) -> Outcome:
        seen.append(run.job)
        return Outcome("succeeded", "done")

    runner = engine.runner()
    taken = runner.resume_gone(carry_on)
    assert sorted(taken) == sorted(jobs[name].id for name in ("dead pid", "silent host", "nobody"))
    for job_id in taken:
        done = runner.wait(job_id, timeout=WAIT)
        assert done.state == "succeeded" and done.owner == this_process()
        assert done.log == ("queued", f"resumed by {this_process()}", "done")
        assert done.started_at == NOW  # it runs on: it was started before
    assert {j.state for j in seen} == {"running"}
    assert engine.job(jobs["beating host"].id).state == "running"
    assert runner.resume_gone(carry_on) == []  # nothing is left to take


def test_a_cancel_request_stops_the_work_at_its_next_step(engine: Engine) -> None:
    runner, work = engine.runner(), engine.paced()
    job = runner.submit(toy(), work)
    assert work.started.wait(WAIT)
    asked = request_cancel(engine.uow(), job.id)
    assert asked.cancel_requested and asked.state == "running"
    work.step()  # the report sees the request: the work goes no further
    done = runner.wait(job.id, timeout=WAIT)
    assert (done.state, done.error, done.result, done.log[-1]) == ("cancelled", None, {},
                                                                   "cancelled")  # fmt: skip
    assert request_cancel(engine.uow(), job.id).state == "cancelled"  # finished: left as it is


def test_shutting_down_cancels_what_runs_or_leaves_it_for_the_next_process(
    engine: Engine,
) -> None:
    runner, work, behind = engine.runner(), engine.paced(), engine.paced()
    running = runner.submit(toy(), work)
    queued = runner.submit(toy(), behind)
    assert work.started.wait(WAIT)
    runner.shutdown(wait=False, cancel=True)
    work.step()
    assert runner.wait(running.id, timeout=WAIT).state == "cancelled"
    assert runner.wait(queued.id, timeout=WAIT).state == "queued"  # never started here
    assert not behind.started.is_set()

    keeper, work = engine.runner(), engine.paced(1)
    kept = keeper.submit(toy(), work)
    assert work.started.wait(WAIT)
    keeper.shutdown(wait=False, cancel=False)
    assert not engine.job(kept.id).cancel_requested
    work.step()
    assert keeper.wait(kept.id, timeout=WAIT).state == "succeeded"


def _raises(error: Exception) -> Work:
    def work(run: Run) -> Outcome:
        raise error

    return work


@pytest.mark.parametrize(
    ("work", "state", "error", "log"),
    [
        (_raises(InvalidInput("no such column")), "failed", "no such column",
         ("failed: no such column",)),
        (_raises(KeyError("x")), "failed", "KeyError: 'x'", ("failed: KeyError: 'x'",)),
        (lambda run: Outcome("succeeded", "done", warnings=("few rows", "a constant column")),
         "succeeded", None, ("warning: few rows", "warning: a constant column", "done")),
        (lambda run: Outcome("failed", "stopped: over quota", error="over quota"), "failed",
         "over quota", ("stopped: over quota",)),
        (lambda run: None, "running", None, ()),  # another process has it now
    ],
    ids=["our error", "a bug", "warnings", "the work's failure", "left alone"],
)  # fmt: skip
def test_how_the_work_ends_is_written_once(
    engine: Engine, work: Work, state: str, error: str | None, log: tuple[str, ...]
) -> None:
    runner = engine.runner()
    done = runner.wait(runner.submit(toy(), work).id, timeout=WAIT)
    assert (done.state, done.error, done.log) == (state, error, ("queued", "started", *log))
    assert (done.finished_at is None) == (state == "running")


def test_a_failure_whose_message_holds_a_nul_still_ends_the_job_failed(engine: Engine) -> None:
    """Found in review: a training request with "slices": ["a\\u0000"] failed with a message
    naming the column, PostgreSQL refused the NUL in the job's error, and the job stayed
    "running" for ever. The text is written out (\\x00) so every database keeps it."""

    def refuse(run: Run) -> Outcome:
        raise InvalidInput("slices: a\x00 is not a column of the rows read")

    runner = engine.runner()
    done = runner.wait(runner.submit(toy(), refuse).id, timeout=WAIT)
    assert done.state == "failed" and done.error is not None
    assert "\x00" not in done.error and "a\\x00 is not a column" in done.error
    assert all("\x00" not in line for line in done.log)
