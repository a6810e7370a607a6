"""This model, as the caller named it: the one authorization every route and page that acts on
a model goes through (the prediction protocols, batches, schema, OpenAPI and OIP metadata, the
dashboard's and the portal's pages), so that a grant reaches the same calls wherever they come
from.

`churn` means the production alias where one is set (else the model as a whole, served at its
latest version); `churn@production` that alias; `churn@3` version 3. Authorization is about
that target, before the alias is followed: a grant on `churn@production` opens `churn` and
`churn@production`, and nothing else (not `churn@staging`, not `churn@3` even while production
points at 3); a grant on `churn@3` opens `churn@3` only. Every grant on a model lets its holder
`describe` it (see access/policy.py).

    asked = authorize_asked(principal, "predict", services.aliases.target, "churn@production")
    version = resolve(asked.model, asked.number, asked.alias)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlgate.access import policy
from mlgate.access.model import Principal, Target
from mlgate.errors import InvalidInput
from mlgate.registry.model import PRODUCTION
from mlgate.registry.service import parse_ref

# Where model@alias points in this process (runtime/watcher.py), None where it points nowhere.
Follow = Callable[[str, str], int | None]


@dataclass(frozen=True)
class Asked:
    """A call as the caller named it: `target` is what authorization was about (the bare name
    means the production alias where there is one); `number`/`alias` what to serve."""

    target: Target
    number: int | None
    alias: str | None

    @property
    def model(self) -> str:
        return self.target.model

    @property
    def ref(self) -> str:
        """How to name it again in a path: `churn`, `churn@production`, `churn@3`."""
        return str(self.target)


def asked_for(follow: Follow, name: str, number: int | None, alias: str | None) -> Asked:
    """What was asked for, and the version this process serves for an alias it has loaded (its
    target, switched after loading)."""
    target = Target(name, alias=alias, version=number)
    if number is None:
        followed = follow(name, alias or PRODUCTION)
        if followed is not None:
            number, alias = followed, None
            if target.whole_model:
                target = Target(name, alias=PRODUCTION)
    return Asked(target, number, alias)


def read_ref(
    ref: str, number: int | None = None, alias: str | None = None
) -> tuple[str, int | None, str | None]:
    """`name`, `name@alias` or `name@3`, with a version or alias given beside it (a query
    parameter, a path segment); naming one twice is refused rather than guessed at."""
    model, ref_number, ref_alias = parse_ref(ref)
    if (ref_number is not None or ref_alias is not None) and (
        number is not None or alias is not None
    ):
        raise InvalidInput(
            f"{ref[:80]!r} names its alias or version already; drop the version or alias "
            "given beside it"
        )
    if number is not None and alias is not None:
        raise InvalidInput("name a version or an alias, not both")
    return model, ref_number if number is None else number, ref_alias if alias is None else alias


def authorize_asked(
    principal: Principal,
    action: policy.Action,
    follow: Follow,
    ref: str,
    number: int | None = None,
    alias: str | None = None,
) -> Asked:
    """What the caller asked for, if it may do `action` on it (as named, before the alias is
    followed); raises PermissionDenied otherwise, InvalidInput for a name that is not one."""
    asked = asked_for(follow, *read_ref(ref, number, alias))
    policy.authorize(principal, action, asked.target)
    return asked
