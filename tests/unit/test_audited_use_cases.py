"""Every change is audited, whoever makes it: each function of the inner packages that changes
state (it commits a unit of work, or calls one that does) is a declared use case that records
its own event (`@audited`), writes its own events (`@records_its_own`), or is listed in
`audit.NOT_AUDITED` with why. A new use case that is in none of them fails here."""

from __future__ import annotations

import ast
import asyncio
import functools
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import mlgate
from mlgate.access import accounts, audit
from mlgate.access.audit import NOT_AUDITED, acting, audited, unattended
from mlgate.access.model import AuditQuery
from mlgate.errors import InvalidInput, PermissionDenied
from tests.fakes import InMemoryUnitOfWork, in_memory_uow_factory

PACKAGE = Path(mlgate.__file__).parent
EDGES = {"api", "cli", "web", "client", "db", "__main__.py"}  # edges and adapters, not use cases
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Function:
    name: (
        str  # dotted under mlgate: "access.accounts.create_user", "training.jobs.JobRunner.submit"
    )
    node: ast.FunctionDef

    @property
    def public(self) -> bool:
        return not any(part.startswith("_") for part in self.name.split("."))

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[1]


def _functions() -> Iterator[Function]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in EDGES:
            continue
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                yield Function(f"{module}.{node.name}", node)
            if isinstance(node, ast.ClassDef):
                for method in node.body:
                    if isinstance(method, ast.FunctionDef) and method.name != "__init__":
                        yield Function(f"{module}.{node.name}.{method.name}", method)


def _calls(node: ast.AST) -> set[str]:
    """The names this function calls: `f(...)`, `module.f(...)`; `x.commit()` as "commit"."""
    found = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            if isinstance(call.func, ast.Name):
                found.add(call.func.id)
            elif isinstance(call.func, ast.Attribute):
                found.add(call.func.attr)
    return found


def _in_a_facade(f: Function) -> bool:
    """A method of a package's `usecases.py` facade: the use cases with their adapters bound.
    It delegates to the use case, which records the event (tested below: it never commits)."""
    return f.name.split(".")[1:2] == ["usecases"]


@functools.cache
def state_changing() -> dict[str, Function]:
    """Every public function (and method of a public class) that commits, or calls by name a
    function that does (private helpers included); the facades' delegating methods aside."""
    functions = [f for f in _functions() if not _in_a_facade(f)]
    return {name: f for name, f in _changing(functions).items() if f.public}


def test_the_facades_only_delegate() -> None:
    facades = [f for f in _functions() if _in_a_facade(f)]
    assert any(f.name.startswith("rollouts.usecases.Rollouts.") for f in facades)
    committing = sorted(f.name for f in facades if "commit" in _calls(f.node))
    assert committing == [], (
        "a facade method binds adapters and calls a use case; the transaction (and its audit"
        " event) belongs to that use case"
    )


def _changing(functions: list[Function]) -> dict[str, Function]:
    at_work = [f for f in functions if _uses_a_unit_of_work(f.node)]
    changing = {f.name: f for f in at_work if "commit" in _calls(f.node)}
    while True:
        names = {f.short for f in changing.values()} - {"record"}  # the audit log itself
        more = {f.name: f for f in at_work if f.name not in changing and _calls(f.node) & names}
        if not more:
            return changing
        changing.update(more)


def _uses_a_unit_of_work(node: ast.FunctionDef) -> bool:
    """A use case's shape: a `uow` parameter (a unit of work or a factory of them), or a
    service object's own (`self._uow`)."""
    arguments = node.args.args + node.args.kwonlyargs
    if any(a.arg == "uow" for a in arguments):
        return True
    return any(isinstance(n, ast.Attribute) and n.attr in ("uow", "_uow") for n in ast.walk(node))


def _object(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module("mlgate." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return found
    raise AssertionError(f"{dotted} is not importable")


def test_the_discovery_finds_the_use_cases_we_know() -> None:
    found = state_changing()
    for known in (
        "access.accounts.create_user",
        "access.service.create_key",
        "access.grants.add_grant",
        "plans.service.create_plan",
        "plans.service.subscribe",
        "sources.service.add_source",
        "training.service.train_model",  # commits through register_version
        "registry.aliases.promote",
        "monitoring.service.Monitor.configure",
    ):
        assert known in found, known


def test_every_state_changing_use_case_is_audited_or_says_why_not() -> None:
    unaccounted = sorted(
        name
        for name in state_changing()
        if name not in NOT_AUDITED and not hasattr(_object(name), "__mlgate_audited__")
    )
    assert unaccounted == [], (
        "these change state but record nothing: declare them @audit.audited(action, target) "
        "(or @audit.records_its_own), or list them in audit.NOT_AUDITED with why"
    )


def test_the_exemptions_name_real_state_changing_functions_only() -> None:
    changing = state_changing()
    stale = sorted(name for name in NOT_AUDITED if name not in changing)
    both = sorted(n for n in NOT_AUDITED if hasattr(_object(n), "__mlgate_audited__"))
    assert stale == [] and both == []


# ---- what a declared use case records --------------------------------------------------------


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return in_memory_uow_factory()()


def _events(uow: InMemoryUnitOfWork) -> list[tuple[str, str, str, str, str]]:
    with uow:
        found = uow.audit.query(AuditQuery())
    return [(e.actor, e.action, e.target, e.address, e.result) for e in reversed(found)]


def test_a_use_case_records_its_change_with_the_actor_at_work(uow: InMemoryUnitOfWork) -> None:
    with acting("cli:ada", "local"):
        accounts.create_user(uow, by=None, name="boss", password=None, is_admin=True, now=NOW)
    assert _events(uow) == [("cli:ada", "access.create_user", "boss", "local", "ok")]
    with uow:
        assert uow.audit.query(AuditQuery())[0].at == NOW


def test_failed_and_denied_attempts_are_recorded_and_still_raised(
    uow: InMemoryUnitOfWork,
) -> None:
    accounts.create_user(uow, by=None, name="boss", password=None, is_admin=True, now=NOW)
    with acting("cli:ada"):
        with pytest.raises(InvalidInput):  # too weak: refused, and audited
            accounts.set_password(uow, "boss", "123", by=None, now=NOW)
        with pytest.raises(PermissionDenied):
            accounts.create_user(
                uow, by=_not_admin(), name="eve", password=None, is_admin=True, now=NOW
            )
    assert _events(uow) == [
        ("cli:ada", "access.set_password", "boss", "local", "failed"),
        ("cli:ada", "access.create_user", "eve", "local", "denied"),
    ]
    with uow:
        assert [e.detail for e in uow.audit.query(AuditQuery())][::-1][0]["error"]


def _not_admin() -> Any:
    from mlgate.access.model import Principal

    return Principal(kind="user", name="eve", is_admin=False, scopes=frozenset({"admin"}))


def test_a_use_case_called_by_another_is_part_of_its_event(uow: InMemoryUnitOfWork) -> None:
    @audited("tests.outer", "name")
    def outer(uow: InMemoryUnitOfWork, name: str, now: datetime) -> None:
        accounts.create_consumer(uow, by=None, name=name, description="", now=now)

    with acting("cli:ada"):
        outer(uow, "acme", NOW)
    assert _events(uow) == [("cli:ada", "tests.outer", "acme", "local", "ok")]


def test_outside_an_acting_block_the_use_case_leaves_it_to_its_edge(
    uow: InMemoryUnitOfWork,
) -> None:
    # An HTTP request is recorded by the API's AuditLog middleware (refusals included); a
    # second entry from the use case would count the change twice.
    accounts.create_consumer(uow, by=None, name="acme", description="", now=NOW)
    assert _events(uow) == []
    assert audit.actor_of(None).startswith("cli:")


def test_a_server_started_at_the_cli_does_not_act_as_its_operator(
    uow: InMemoryUnitOfWork,
) -> None:
    # `mlgate serve` runs uvicorn in `unattended`: the requests' tasks and threads copy that
    # context, so a change made over HTTP is the middleware's to record, as its caller's.
    async def request() -> None:
        await asyncio.to_thread(
            accounts.create_consumer, uow, by=None, name="acme", description="", now=NOW
        )

    with acting("cli:ada"):
        unattended(lambda: asyncio.run(request()))
        accounts.create_consumer(uow, by=None, name="beta", description="", now=NOW)
    assert _events(uow) == [("cli:ada", "access.create_consumer", "beta", "local", "ok")]
