"""Accounts, keys, grants and the audit log as the edges call them: bound once at the
composition root (bootstrap.Services.access) with the unit of work, the clock and the server
secret, so an edge passes only the request's data and who asks (`by`).

Each method delegates to the use case in accounts.py, service.py, grants.py or audit.py, which
records its own audit event; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mlgate.access import accounts, audit, grants, service
from mlgate.access.model import (
    ApiKey,
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    OwnerKind,
    Principal,
    Session,
    SubjectKind,
    User,
)
from mlgate.uow import UnitOfWork


@dataclass(frozen=True)
class Access:
    """Who may call what, with this process's adapters bound."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    server_secret: bytes = field(repr=False)
    # Single sign-on's machine tokens (sso/service.py): a bearer that is a JWT, not our key
    machine: Callable[[str], Principal] | None = None

    # -- users and logins -----------------------------------------------------------------

    def create_user(
        self, *, by: Principal | None, name: str, password: str | None, is_admin: bool
    ) -> User:
        return accounts.create_user(self.uow(), by=by, name=name, password=password,
                                    is_admin=is_admin, now=self.clock())  # fmt: skip

    def users(self, *, by: Principal | None) -> list[User]:
        return accounts.list_users(self.uow(), by=by)

    def set_user_disabled(self, name: str, *, disabled: bool, by: Principal | None) -> User:
        return accounts.set_user_disabled(self.uow(), name, disabled=disabled, by=by,
                                          now=self.clock())  # fmt: skip

    def set_password(self, name: str, new_password: str, *, by: Principal | None) -> None:
        accounts.set_password(self.uow(), name, new_password, by=by, now=self.clock())

    def login(
        self,
        name: str,
        password: str,
        *,
        ttl: timedelta = accounts.SESSION_TTL,
        kind: OwnerKind = "user",
    ) -> tuple[Session, str]:
        return accounts.login(self.uow(), self.server_secret, name, password, now=self.clock(),
                              ttl=ttl, kind=kind)  # fmt: skip

    def logout(self, principal: Principal) -> None:
        accounts.logout(self.uow(), principal, now=self.clock())

    def change_password(self, principal: Principal, current: str, new: str) -> None:
        accounts.change_password(self.uow(), principal, current, new, now=self.clock())

    def session_principal(self, raw: str) -> Principal:
        return accounts.session_principal(self.uow(), self.server_secret, raw, now=self.clock())

    # -- consumers --------------------------------------------------------------------------

    def create_consumer(self, *, by: Principal | None, name: str, description: str) -> Consumer:
        return accounts.create_consumer(self.uow(), by=by, name=name, description=description,
                                        now=self.clock())  # fmt: skip

    def consumers(self, *, by: Principal | None) -> list[Consumer]:
        return accounts.list_consumers(self.uow(), by=by)

    def consumer(self, name: str, *, by: Principal | None) -> Consumer:
        return accounts.get_consumer(self.uow(), name, by=by)

    def set_consumer_disabled(self, name: str, *, disabled: bool, by: Principal | None) -> Consumer:
        return accounts.set_consumer_disabled(self.uow(), name, disabled=disabled, by=by,
                                              now=self.clock())  # fmt: skip

    def set_consumer_password(self, name: str, new_password: str, *, by: Principal | None) -> None:
        accounts.set_consumer_password(self.uow(), name, new_password, by=by, now=self.clock())

    def set_billing_id(
        self, name: str, billing_id: str | None, *, by: Principal | None
    ) -> Consumer:
        return accounts.set_consumer_billing_id(self.uow(), name, billing_id, by=by)

    # -- keys -------------------------------------------------------------------------------

    def create_key(
        self,
        *,
        by: Principal | None,
        owner_kind: OwnerKind,
        owner: str,
        name: str,
        scopes: Sequence[str] = ("predict",),
        expires_at: datetime | None = None,
        targets: Sequence[str] = (),
    ) -> tuple[ApiKey, str]:
        return service.create_key(
            self.uow(), self.server_secret, by=by, owner_kind=owner_kind, owner=owner,
            name=name, now=self.clock(), scopes=scopes, expires_at=expires_at, targets=targets,
        )  # fmt: skip

    def keys(
        self,
        *,
        by: Principal | None,
        owner_kind: OwnerKind | None = None,
        owner: str | None = None,
    ) -> list[ApiKey]:
        return service.list_keys(self.uow(), by=by, owner_kind=owner_kind, owner=owner)

    def revoke_key(self, prefix_or_name: str, *, by: Principal | None) -> ApiKey:
        return service.revoke_key(self.uow(), prefix_or_name, by=by, now=self.clock())

    def rotate_key(
        self, prefix_or_name: str, *, by: Principal | None, overlap: timedelta
    ) -> tuple[ApiKey, str]:
        return service.rotate_key(self.uow(), self.server_secret, prefix_or_name, by=by,
                                  overlap=overlap, now=self.clock())  # fmt: skip

    def check_keys(self, text: str, *, offline: bool = False) -> list[service.KeyFinding]:
        """The key-like strings in `text`, and (unless `offline`) whether each works."""
        return service.check_text(None if offline else self.uow(), self.server_secret, text,
                                  now=self.clock())  # fmt: skip

    def authenticate(self, authorization: str | None) -> Principal:
        if self.machine is not None and authorization is not None:
            scheme, raw = authorization.strip()[:7], authorization.strip()[7:].strip()
            if (
                scheme.lower() == "bearer "
                and raw.count(".") == 2
                and not raw.startswith(("mlg_", "mls_"))
            ):
                return self.machine(raw)
        return service.authenticate(self.uow(), self.server_secret, authorization,
                                    now=self.clock())  # fmt: skip

    # -- grants and the audit log ---------------------------------------------------------------

    def add_grant(
        self,
        *,
        by: Principal | None,
        subject_kind: SubjectKind,
        subject: str,
        target: str,
        role: str,
        actor: str,
    ) -> Grant:
        return grants.add_grant(
            self.uow(), by=by, subject_kind=subject_kind, subject=subject, target=target,
            role=role, now=self.clock(), actor=actor,
        )  # fmt: skip

    def grants(
        self,
        *,
        by: Principal | None,
        model: str | None = None,
        subject_kind: SubjectKind | None = None,
        subject: str | None = None,
    ) -> list[Grant]:
        return grants.list_grants(self.uow(), by=by, model=model, subject_kind=subject_kind,
                                  subject=subject)  # fmt: skip

    def remove_grant(self, grant_id: int, *, by: Principal | None) -> Grant:
        return grants.remove_grant(self.uow(), grant_id, by=by)

    def grant_owner_of_new_model(self, principal: Principal, model: str) -> None:
        grants.grant_owner_of_new_model(self.uow(), principal, model, self.clock())

    def audit_log(self, query: AuditQuery) -> list[AuditEvent]:
        return audit.query(self.uow(), query)
