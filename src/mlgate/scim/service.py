"""SCIM 2.0 provisioning (RFC 7643, RFC 7644) over scim2-models: the identity provider
creates, replaces, patches and deletes Users and Groups here.

What it means for mlgate:
- a User resource is the mlgate user named by its `userName` (made without a password: the
  person signs in through the provider); `active: false`, or deleting the resource, disables
  the user: their login sessions end and their API keys stop working (access/service.py
  refuses the keys of a disabled owner). Each process keeps who a credential is for a second
  at most (caching.py), so every replica refuses them within a second.
- a Group resource is the group its `displayName` names, the one `mlgate grants add ...
  --group NAME` grants to; its members' mlgate users carry it (User.groups), so their group
  grants reach them at once, without waiting for their next sign-in.
- every resource is kept as the provider sent it (scim_resources), so it reads back what it
  wrote; every change is audited with the actor `scim`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    EnterpriseUser,
    Error,
    Group,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    PatchOp,
    Resource,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    UniquenessException,
    User,
)

from mlgate.access import audit
from mlgate.access.model import User as MlgateUser
from mlgate.errors import InvalidInput
from mlgate.registry.model import check_user_name
from mlgate.scim.model import Kind, ScimRecord
from mlgate.uow import UnitOfWork

ScimUser = User[EnterpriseUser]
MODELS: dict[Kind, type[Resource[Any]]] = {"User": ScimUser, "Group": Group}
ENDPOINTS: dict[Kind, str] = {"User": "Users", "Group": "Groups"}
ACTOR = "scim"
MAX_COUNT = 1000  # resources a page lists at most (ServiceProviderConfig's filter.maxResults)
# Never stored from a payload: what the service sets, and a password (people sign in through
# the provider; mlgate keeps no copy of their provider password)
_NOT_STORED = ("id", "meta", "groups", "password")
_NAME_ATTRIBUTE: dict[Kind, str] = {"User": "userName", "Group": "displayName"}
_NAME_EQ = re.compile(r'\s*(\w+)\s+eq\s+"([^"\\]*)"\s*', re.IGNORECASE)  # `userName eq "x"`


class BadRequest(SCIMException):
    """A payload that does not validate (scim2-models' errors, as the RFC's invalidValue)."""

    def __init__(self, error: Error) -> None:
        super().__init__(detail=error.detail or "the payload is not a valid SCIM resource")
        self.status = int(error.status or 400)
        self.scim_type = error.scim_type or "invalidValue"


@dataclass
class Provisioning:
    """SCIM with this process's adapters bound. `base` is the /scim/v2 URL a resource's
    `meta.location` starts with."""

    uow: Callable[[], UnitOfWork]
    clock: Callable[[], datetime]
    # MLGATE_OIDC_ADMIN_GROUPS: a member of one is an admin, as at sign-in (empty: untouched)
    admin_groups: frozenset[str] = frozenset()

    def get(self, kind: Kind, record_id: str, base: str, params: dict[str, str]) -> dict[str, Any]:
        with self.uow() as uow:
            record = _record(uow, kind, record_id)
            return _dump(_model(uow, record, base), Context.RESOURCE_QUERY_RESPONSE, params)

    def list(
        self, kind: Kind, base: str, params: dict[str, str], *, start: int, count: int
    ) -> dict[str, Any]:
        """A page of the resources that match `params["filter"]` (every one without),
        `start` counted from 1 as the RFC does."""
        model = MODELS[kind]
        text = params.get("filter")
        try:
            found = ScimFilter[model](text) if text else None  # type: ignore[valid-type]
        except SCIMException:
            raise
        except (ValueError, ValidationError) as exc:
            raise InvalidFilterException(detail=f"the filter does not parse: {exc}"[:300]) from exc
        with self.uow() as uow:
            named = _NAME_EQ.fullmatch(text or "")
            if named and named.group(1).lower() == _NAME_ATTRIBUTE[kind].lower():
                # what providers send before every change: one indexed read, not every record
                one = uow.scim.named(kind, named.group(2))
                records = [] if one is None else [one]
            else:
                records = uow.scim.all(kind)
            groups = uow.scim.all("Group") if kind == "User" and records else []
            models = [_model(uow, r, base, groups) for r in records]
        matching = [m for m in models if found is None or found.match(m)]
        page = matching[start - 1 : start - 1 + count]
        listed = ListResponse[model](  # type: ignore[valid-type]
            total_results=len(matching), start_index=start, items_per_page=len(page),
            resources=page,
        )  # fmt: skip
        return _dump(listed, Context.SEARCH_RESPONSE, params)

    @audit.records_its_own
    def create(self, kind: Kind, payload: Any, base: str, address: str) -> dict[str, Any]:
        resource = _validate(MODELS[kind], payload, Context.RESOURCE_CREATION_REQUEST)
        now = self.clock()
        name = _name_of(kind, resource)
        record = ScimRecord(
            id=uuid.uuid4().hex, kind=kind, name=name, body=_stored(resource),
            created_at=now, updated_at=now, external_id=resource.external_id,
        )  # fmt: skip
        with self.uow() as uow:
            if uow.scim.named(kind, name) is not None:
                raise UniquenessException(detail=f"a {kind} named {name!r} exists")
            if kind == "User":
                _adopt_user(uow, name, now)
            uow.scim.add(record)
            changes = _apply(uow, None, record, now, self.admin_groups)
            out = _dump(_model(uow, record, base), Context.RESOURCE_CREATION_RESPONSE, {})
            uow.commit()
        _audit(self, f"scim.create_{kind.lower()}", record, address, **changes)
        return out

    @audit.records_its_own
    def replace(
        self, kind: Kind, record_id: str, payload: Any, base: str, address: str
    ) -> dict[str, Any]:
        resource = _validate(MODELS[kind], payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._change(kind, record_id, base, address, "replace", lambda _: resource)

    @audit.records_its_own
    def patch(
        self, kind: Kind, record_id: str, payload: Any, base: str, address: str
    ) -> dict[str, Any]:
        model = MODELS[kind]
        operation = _validate(PatchOp[model], payload, Context.RESOURCE_PATCH_REQUEST)  # type: ignore[valid-type]

        def patched(current: Resource[Any]) -> Resource[Any]:
            operation.patch(current)
            again: Resource[Any] = _validate(
                model, current.model_dump(scim_ctx=Context.DEFAULT), None
            )
            return again

        return self._change(kind, record_id, base, address, "patch", patched)

    def _change(
        self,
        kind: Kind,
        record_id: str,
        base: str,
        address: str,
        verb: str,
        change: Callable[[Resource[Any]], Resource[Any]],
    ) -> dict[str, Any]:
        now = self.clock()
        with self.uow() as uow:
            before = _record(uow, kind, record_id)
            resource = change(_model(uow, before, base))
            name = _name_of(kind, resource)
            if name != before.name:
                _rename(uow, before, name)
            after = replace(
                before, name=name, body=_stored(resource), updated_at=now,
                version=before.version + 1, external_id=resource.external_id,
            )  # fmt: skip
            uow.scim.save(after)
            changes = _apply(uow, before, after, now, self.admin_groups)
            out = _dump(_model(uow, after, base), Context.RESOURCE_REPLACEMENT_RESPONSE, {})
            uow.commit()
        _audit(self, f"scim.{verb}_{kind.lower()}", after, address, **changes)
        return out

    @audit.records_its_own
    def delete(self, kind: Kind, record_id: str, address: str) -> None:
        """A deleted User's mlgate user is disabled, its sessions end and its keys are revoked
        (lineage and the audit log keep naming it); a deleted Group leaves its members."""
        now = self.clock()
        with self.uow() as uow:
            record = _record(uow, kind, record_id)
            uow.scim.remove(kind, record_id)
            changes = _apply(uow, record, None, now, self.admin_groups)
            uow.commit()
        _audit(self, f"scim.delete_{kind.lower()}", record, address, **changes)


def error_body(exc: SCIMException) -> dict[str, Any]:
    return exc.to_error().model_dump(scim_ctx=Context.DEFAULT)


def _validate(model: type[Any], payload: Any, ctx: Context | None) -> Any:
    try:
        return model.model_validate(payload, scim_ctx=ctx)
    except ValidationError as exc:
        raise BadRequest(Error.from_validation_errors(exc)[0]) from exc


def _dump(obj: Any, ctx: Context, params: dict[str, str]) -> dict[str, Any]:
    asked = {k: v for k, v in params.items() if k in ("attributes", "excludedAttributes")}
    response = None
    if asked:
        model = type(obj)
        if isinstance(obj, ListResponse):
            model = type(obj).__pydantic_generic_metadata__["args"][0]
        response = _validate(ResponseParameters[model], asked, None)  # type: ignore[valid-type]
    return obj.model_dump(scim_ctx=ctx, response_parameters=response)  # type: ignore[no-any-return]


def _record(uow: UnitOfWork, kind: Kind, record_id: str) -> ScimRecord:
    found = uow.scim.get(kind, record_id[:64])
    if found is None:
        raise NotFoundException(detail=f"no {kind} has the id {record_id[:64]!r}")
    return found


def _name_of(kind: Kind, resource: Any) -> str:
    if kind == "User":
        name = str(resource.user_name or "")
        try:
            check_user_name(name)
        except InvalidInput as exc:
            raise InvalidValueException(detail=f"userName: {exc}") from exc
        return name
    name = str(resource.display_name or "")
    if not name or len(name) > 128:
        raise InvalidValueException(detail="displayName is 1-128 characters")
    return name


def _stored(resource: Resource[Any]) -> dict[str, Any]:
    body: dict[str, Any] = resource.model_dump(scim_ctx=Context.DEFAULT)
    for key in _NOT_STORED:
        body.pop(key, None)
    return body


def _model(
    uow: UnitOfWork, record: ScimRecord, base: str, groups: list[ScimRecord] | None = None
) -> Resource[Any]:
    """The resource as the provider reads it: what it sent, with the id, meta and (for a
    User) the groups it is a member of."""
    body = dict(record.body)
    body["id"] = record.id
    body["meta"] = {
        "resourceType": record.kind,
        "created": record.created_at.isoformat(),
        "lastModified": record.updated_at.isoformat(),
        "location": f"{base}/{ENDPOINTS[record.kind]}/{record.id}",
        "version": f'W/"{record.version}"',
    }
    if record.kind == "User":
        every = uow.scim.all("Group") if groups is None else groups
        groups = [g for g in every if record.id in g.members()]
        if groups:
            body["groups"] = [
                {"value": g.id, "display": g.name, "$ref": f"{base}/Groups/{g.id}",
                 "type": "direct"}
                for g in groups
            ]  # fmt: skip
    resource: Resource[Any] = _validate(MODELS[record.kind], body, Context.DEFAULT)
    return resource


def _adopt_user(uow: UnitOfWork, name: str, now: datetime) -> None:
    """The mlgate user a new User resource names: a new one without a password, or one single
    sign-on made before provisioning began. A local account with a password is not taken."""
    user = uow.users.get(name)
    if user is None:
        uow.users.add(MlgateUser(name=name, is_admin=False, created_at=now))
    elif user.password_hash is not None:
        raise UniquenessException(
            detail=f"the mlgate user {name!r} has a password here; an admin renames or removes "
            "it before the provider can manage it"
        )


def _rename(uow: UnitOfWork, before: ScimRecord, name: str) -> None:
    taken = uow.scim.named(before.kind, name)
    if taken is not None and taken.id != before.id:
        raise UniquenessException(detail=f"a {before.kind} named {name!r} exists")
    if before.kind == "User":
        if name.lower() != before.name.lower() and uow.users.get(name) is not None:
            raise UniquenessException(detail=f"an mlgate user named {name!r} exists")
        uow.scim.rename_user(before.name, name)
    else:  # the group's grants follow its new name
        for grant in uow.grants.of_subject("group", before.name):
            uow.grants.remove(grant.id)
            uow.grants.add(replace(grant, subject=name))


def _apply(
    uow: UnitOfWork,
    before: ScimRecord | None,
    after: ScimRecord | None,
    now: datetime,
    admin_groups: frozenset[str],
) -> dict[str, Any]:
    """Bring the mlgate users in line with a resource's change; what changed, for the audit."""
    changes: dict[str, Any] = {}
    record = after or before
    assert record is not None
    if record.kind == "User":
        active = after is not None and after.body.get("active") is not False
        changes.update(_set_active(uow, record.name, active, now, deleted=after is None))
        if after is None:  # out of every group too
            for group in uow.scim.all("Group"):
                if record.id in group.members():
                    kept = [m for m in group.body.get("members", []) if m.get("value") != record.id]
                    uow.scim.save(replace(group, body={**group.body, "members": kept}))
            # its record is gone, so `_project` cannot reach the user: drop its groups here, or
            # `mlgate users enable` would bring back the group grants (and admin) it had
            user = uow.users.get(record.name)
            if user is not None and (user.groups or (admin_groups and user.is_admin)):
                admin = False if admin_groups else user.is_admin
                uow.users.save(replace(user, groups=(), is_admin=admin))
        _project(uow, [record.id], admin_groups)
    else:
        old = set(before.members()) if before else set()
        new = set(after.members()) if after else set()
        if old != new:
            changes["members_added"] = len(new - old)
            changes["members_removed"] = len(old - new)
        renamed = before is not None and after is not None and before.name != after.name
        changed = new | old if renamed or before is None or after is None else new ^ old
        _project(uow, changed, admin_groups)
    return changes


def _set_active(
    uow: UnitOfWork, name: str, active: bool, now: datetime, *, deleted: bool
) -> dict[str, Any]:
    user = uow.users.get(name)
    if user is None:
        return {}
    changes: dict[str, Any] = {}
    if not active and user.disabled_at is None:
        uow.users.save(replace(user, disabled_at=now))
        uow.sessions.revoke_all(name, now)
        changes["deactivated"] = True
    elif active and user.disabled_at is not None:
        uow.users.save(replace(user, disabled_at=None))
        changes["reactivated"] = True
    if deleted:
        revoked = [k.prefix for k in uow.keys.all("user", name) if k.revoked_at is None]
        for prefix in revoked:
            uow.keys.revoke(prefix, now)
        changes["keys_revoked"] = revoked
    return changes


def _project(uow: UnitOfWork, user_ids: Iterable[str], admin_groups: frozenset[str]) -> None:
    """Each of these users' mlgate groups: the Groups that list them as a member (and, where
    admin groups are set, whether they are an admin)."""
    groups = uow.scim.all("Group")
    for user_id in user_ids:
        record = uow.scim.get("User", user_id)
        user = None if record is None else uow.users.get(record.name)
        if user is None:
            continue
        names = tuple(sorted({g.name for g in groups if user_id in g.members()}))
        is_admin = bool(admin_groups & set(names)) if admin_groups else user.is_admin
        if names != user.groups or is_admin != user.is_admin:
            uow.users.save(replace(user, groups=names, is_admin=is_admin))


def _audit(
    service: Provisioning, action: str, record: ScimRecord, address: str, **detail: Any
) -> None:
    target = f"user:{record.name}" if record.kind == "User" else f"group:{record.name}"
    audit.record(service.uow(), at=service.clock(), actor=ACTOR, action=action, target=target,
                 address=address, result="ok", detail={"id": record.id, **detail})  # fmt: skip
