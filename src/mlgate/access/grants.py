"""Grants: who may act on which model, alias or version, in which role."""

from __future__ import annotations

from datetime import datetime

from mlgate.access import policy
from mlgate.access.audit import audited
from mlgate.access.model import ROLES, Grant, Principal, Role, SubjectKind, Target
from mlgate.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from mlgate.registry.model import check_name
from mlgate.uow import UnitOfWork


@audited("access.add_grant", "{target} to {subject_kind}:{subject} as {role}")
def add_grant(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    subject_kind: SubjectKind,
    subject: str,
    target: str,
    role: str,
    now: datetime,
    actor: str,
) -> Grant:
    """Give `subject` a role on a model (or one alias or version of it). Admins and the model's
    owners may; a consumer can only be a `consumer`. A group is the identity provider's: its
    grant reaches every user whose last sign-on carried it (it need not exist here yet)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if subject_kind == "consumer" and role != "consumer":
        raise InvalidInput("consumers can only have the consumer role (predict and generate)")
    parsed = Target.parse(target.strip())
    check_name("model", parsed.model)
    if by is not None:
        policy.authorize(by, "grant", Target(parsed.model))
    with uow:
        found: object = (
            uow.users.get(subject)
            if subject_kind == "user"
            else uow.consumers.get(subject)
            if subject_kind == "consumer"
            else _group(subject)
        )
        if found is None:
            raise NotFound(f"no {subject_kind} named {subject!r}")
        if uow.models.get(parsed.model) is None:
            raise NotFound(f"no model named {parsed.model!r}")
        for g in uow.grants.of_subject(subject_kind, subject):
            if g.target == parsed and g.role == role:
                raise AlreadyExists(f"{subject_kind}:{subject} already has {role} on {parsed}")
        grant = uow.grants.add(
            Grant(
                id=0,
                subject_kind=subject_kind,
                subject=subject,
                target=parsed,
                role=_role(role),
                created_at=now,
                created_by=actor,
            )
        )
        uow.commit()
    return grant


def list_grants(
    uow: UnitOfWork,
    *,
    by: Principal | None,
    model: str | None = None,
    subject_kind: SubjectKind | None = None,
    subject: str | None = None,
) -> list[Grant]:
    """Admins see every grant; owners see those on their models; everyone sees their own."""
    with uow:
        if model is not None:
            found = uow.grants.of_model(model)
        elif subject is not None and subject_kind is not None:
            found = uow.grants.of_subject(subject_kind, subject)
        else:
            found = uow.grants.all()
    if by is None or by.is_admin:
        return found
    return [
        g
        for g in found
        if (g.subject_kind, g.subject) == (by.kind, by.name)
        or policy.may(by, "grant", Target(g.target.model))
    ]


@audited("access.remove_grant", "grant_id")
def remove_grant(uow: UnitOfWork, grant_id: int, *, by: Principal | None) -> Grant:
    with uow:
        grant = uow.grants.get(grant_id)
        if grant is None or (by is not None and not _may_manage(by, grant)):
            raise NotFound(f"no grant with id {grant_id} that you may manage")
        if by is not None:
            policy.authorize(by, "grant", Target(grant.target.model))
        if grant.role == "owner" and _last_owner(uow, grant):
            raise PermissionDenied(
                f"this is the last owner of {grant.target.model}; grant another owner first",
                code="forbidden",
            )
        uow.grants.remove(grant_id)
        uow.commit()
    return grant


def grant_owner_of_new_model(
    uow: UnitOfWork, principal: Principal, model: str, now: datetime
) -> None:
    """The user who creates a model by training it becomes its owner (inside `uow`'s
    transaction, so the model never exists without one)."""
    if principal.kind != "user" or principal.is_admin:
        return
    uow.grants.add(
        Grant(
            id=0,
            subject_kind="user",
            subject=principal.name,
            target=Target(model),
            role="owner",
            created_at=now,
            created_by=principal.actor,
        )
    )


def _group(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("a group's name is 1 to 128 characters, as the provider sends it")
    return name


def _may_manage(by: Principal, grant: Grant) -> bool:
    return by.is_admin or policy.may(by, "grant", Target(grant.target.model))


def _last_owner(uow: UnitOfWork, grant: Grant) -> bool:
    owners = [
        g
        for g in uow.grants.of_model(grant.target.model)
        if g.role == "owner" and g.target.whole_model
    ]
    return grant.target.whole_model and len(owners) == 1


def _role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role  # type: ignore[return-value]
    raise InvalidInput(f"unknown role {value!r}")
