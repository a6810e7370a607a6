"""`mlgate users|consumers|grants|audit|login|logout|whoami`: who may do what.

Every command works on the local home (as its operator, who may do anything) or, with `--url`
and a token, against a remote server under that token's rights.
"""

from __future__ import annotations

import secrets
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from mlgate.access import audit
from mlgate.access.model import (
    AuditEvent,
    AuditQuery,
    Consumer,
    Grant,
    OwnerKind,
    SubjectKind,
    User,
)
from mlgate.bootstrap import Services
from mlgate.cli.context import console, services
from mlgate.cli.remote import Remote, remote_of
from mlgate.client.device import device_login
from mlgate.errors import InvalidInput, Unauthenticated

users = typer.Typer(
    help="Team members: create, list, disable, set passwords.", no_args_is_help=True
)
consumers = typer.Typer(help="Customer accounts that call prediction APIs.", no_args_is_help=True)
grants_app = typer.Typer(help="Who may act on which model, alias or version.", no_args_is_help=True)


# ---- users ------------------------------------------------------------------------------------


@users.command("create")
def create_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's name (letters, digits, - _ .).")],
    admin: Annotated[bool, typer.Option("--admin", help="May do everything.")] = False,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a strong password and print it once.")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="An account that cannot log in (keys only).")
    ] = False,
) -> None:
    """Create a user. The password is asked for (hidden), read from stdin, or generated."""
    password = _password(generate, password_stdin, no_password)
    remote = remote_of(ctx)
    if remote:
        remote.call("POST", "/v1/users", json={"name": name, "password": password, "admin": admin})
    else:
        s = services(ctx)
        s.access.create_user(by=None, name=name, password=password, is_admin=admin)
    console.print(f"Created {'admin ' if admin else ''}user [bold]{name}[/]")
    if generate:
        console.print("Password (shown once, store it now):")
        print(password)


@users.command("list")
def list_users(ctx: typer.Context) -> None:
    """List users (never their passwords)."""
    remote = remote_of(ctx)
    rows = remote.call("GET", "/v1/users") if remote else [_user(u) for u in _local_users(ctx)]
    table = Table("name", "admin", "can log in", "groups", "created", "status")
    for u in rows:
        how = [w for w, on in (("password", u["can_log_in"]),
                               ("single sign-on", u.get("single_sign_on"))) if on]  # fmt: skip
        table.add_row(
            u["name"],
            "yes" if u["admin"] else "",
            ", ".join(how) or "no (keys only)",
            ", ".join(u.get("groups") or []),
            str(u["created_at"])[:16],
            "disabled" if u["disabled"] else "active",
        )
    console.print(table)


@users.command("disable")
def disable_user(ctx: typer.Context, name: str) -> None:
    """Disable a user: their keys and sessions stop working at once."""
    _set_disabled(ctx, "users", name, True)


@users.command("enable")
def enable_user(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(ctx, "users", name, False)


@users.command("password")
def set_password(
    ctx: typer.Context,
    name: str,
    generate: Annotated[bool, typer.Option("--generate", help="Make one and print it.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Set a user's password (admins); their sessions end."""
    _set_password(ctx, "user", name, generate, password_stdin)


# ---- consumers --------------------------------------------------------------------------------


@consumers.command("create")
def create_consumer(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="Who they are, for your team.")] = "",
) -> None:
    """Create a consumer; then put it on a plan, grant it models and give it keys."""
    remote = remote_of(ctx)
    if remote:
        remote.call("POST", "/v1/consumers", json={"name": name, "description": description})
    else:
        s = services(ctx)
        s.access.create_consumer(by=None, name=name, description=description)
    console.print(f"Created consumer [bold]{name}[/]. {next_steps(None, name)}")


def next_steps(s: Services | None, consumer: str) -> str:
    """What a consumer still lacks before its first call is answered: a plan, a grant and a key
    (without any one of them every call is refused, 403 or 401). With `s` None (a remote
    server, or a consumer just made) all three are named."""
    steps = {
        "plan": f"`mlgate consumers subscribe {consumer} PLAN` (plans: `mlgate plans list`)",
        "grant": f"`mlgate grants add --consumer {consumer} MODEL consumer`",
        "key": f"`mlgate keys create --consumer {consumer} --name NAME`",
    }
    if s is not None:
        if s.plans.active_subscription(consumer) is not None:
            del steps["plan"]
        if s.access.grants(by=None, subject_kind="consumer", subject=consumer):
            del steps["grant"]
        keys = s.access.keys(by=None, owner_kind="consumer", owner=consumer)
        if any(k.state(s.clock()) == "active" for k in keys):
            del steps["key"]
    if not steps:
        return f"{consumer} has a plan, a grant and a key: it can call its models."
    return (
        "Next: "
        + ", then ".join(steps.values())
        + ("; until then its calls are refused." if "plan" in steps or "grant" in steps else ".")
    )


@consumers.command("password")
def set_consumer_password(
    ctx: typer.Context,
    name: str,
    generate: Annotated[bool, typer.Option("--generate", help="Make one and print it.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Set a consumer's password for the portal (/portal); its portal sessions end."""
    _set_password(ctx, "consumer", name, generate, password_stdin)


@consumers.command("list")
def list_consumers(ctx: typer.Context) -> None:
    """List consumers."""
    remote = remote_of(ctx)
    if remote:
        rows = remote.call("GET", "/v1/consumers")
    else:
        s = services(ctx)
        rows = [_consumer(c) for c in s.access.consumers(by=None)]
    table = Table("name", "description", "created", "status", "billing id")
    for c in rows:
        status = "disabled" if c["disabled"] else "active"
        billing = c.get("billing_id") or "-"
        table.add_row(c["name"], c["description"], str(c["created_at"])[:16], status, billing)
    console.print(table)


@consumers.command("update")
def update_consumer(
    ctx: typer.Context,
    name: str,
    billing_id: Annotated[
        str | None,
        typer.Option(
            "--billing-id",
            help="The customer's id in the billing system (Stripe's cus_…); '' clears it.",
        ),
    ] = None,
) -> None:
    """Change a consumer: its billing id, which the usage export to Stripe names."""
    if billing_id is None:
        raise InvalidInput("nothing to change: say --billing-id cus_… (or '' to clear it)")
    value = billing_id.strip() or None
    remote = remote_of(ctx)
    if remote:
        remote.call("PUT", f"/v1/consumers/{name}/billing-id", json={"billing_id": value})
    else:
        services(ctx).access.set_billing_id(name, value, by=None)
    said = f"billing id {value}" if value else "no billing id (not exported to Stripe)"
    console.print(f"Consumer [bold]{name}[/]: {said}.")


@consumers.command("disable")
def disable_consumer(ctx: typer.Context, name: str) -> None:
    """Disable a consumer: all of its keys stop working at once."""
    _set_disabled(ctx, "consumers", name, True)


@consumers.command("enable")
def enable_consumer(ctx: typer.Context, name: str) -> None:
    """Enable a disabled consumer again."""
    _set_disabled(ctx, "consumers", name, False)


# ---- grants -----------------------------------------------------------------------------------


@grants_app.command("add")
def add_grant(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODEL, MODEL@ALIAS or MODEL@VERSION.")],
    role: Annotated[str, typer.Argument(help="owner, maintainer, viewer or consumer.")],
    user: Annotated[str | None, typer.Option(help="Grant to this user.")] = None,
    consumer: Annotated[str | None, typer.Option(help="Grant to this consumer.")] = None,
    group: Annotated[
        str | None, typer.Option(help="Grant to the members of this single sign-on group.")
    ] = None,
) -> None:
    """Give a user, consumer or single sign-on group a role on a model, one alias or one
    version."""
    kind, subject = _grantee(user, consumer, group)
    remote = remote_of(ctx)
    body = {"subject_kind": kind, "subject": subject, "target": target, "role": role}
    if remote:
        made = remote.call("POST", "/v1/grants", json=body)
    else:
        s = services(ctx)
        made = _grant(
            s.access.add_grant(
                by=None,
                subject_kind=kind,
                subject=subject,
                target=target,
                role=role,
                actor=audit.local_actor(),
            )
        )
    console.print(f"Grant {made['id']}: {kind}:{subject} is {role} of {made['target']}")
    if kind == "consumer" and remote is None:
        console.print(next_steps(services(ctx), subject))


@grants_app.command("list")
def list_grants(
    ctx: typer.Context, model: Annotated[str | None, typer.Option(help="Only this model.")] = None
) -> None:
    """List grants."""
    remote = remote_of(ctx)
    if remote:
        rows = remote.call("GET", "/v1/grants", params={"model": model} if model else None)
    else:
        s = services(ctx)
        rows = [_grant(g) for g in s.access.grants(by=None, model=model)]
    table = Table("id", "subject", "role", "target", "by", "created")
    for g in rows:
        table.add_row(
            str(g["id"]),
            f"{g['subject_kind']}:{g['subject']}",
            g["role"],
            g["target"],
            g["created_by"],
            str(g["created_at"])[:16],
        )
    console.print(table)


@grants_app.command("remove")
def remove_grant(ctx: typer.Context, grant_id: int) -> None:
    """Take a grant away; effective on the next request."""
    remote = remote_of(ctx)
    if remote:
        remote.call("DELETE", f"/v1/grants/{grant_id}")
    else:
        s = services(ctx)
        s.access.remove_grant(grant_id, by=None)
    console.print(f"Removed grant {grant_id}")


# ---- audit, login -----------------------------------------------------------------------------


def audit_log(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="e.g. user:alice, consumer:acme")] = None,
    action: Annotated[str | None, typer.Option(help='Exact, or a prefix like "access."')] = None,
    target: Annotated[str | None, typer.Option(help="e.g. churn@production")] = None,
    result: Annotated[str | None, typer.Option(help="ok, denied or failed")] = None,
    since: Annotated[datetime | None, typer.Option(help="ISO date or time (UTC)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=audit.MAX_LIMIT)] = 50,
) -> None:
    """Show the audit log, newest first: who did what, to what, from where, and how it went."""
    remote = remote_of(ctx)
    if remote:
        params: dict[str, Any] = {
            "actor": actor,
            "action": action,
            "target": target,
            "result": result,
        }
        params |= {"since": since.isoformat() if since else None, "limit": limit}
        rows = remote.call(
            "GET", "/v1/audit", params={k: v for k, v in params.items() if v is not None}
        )
    else:
        s = services(ctx)
        q = AuditQuery(actor, action, target, result, _utc(since), None, limit)
        rows = [_event(e) for e in s.access.audit_log(q)]
    table = Table()
    for column in ("at", "actor", "action", "target", "from", "result"):
        table.add_column(column, overflow="fold")
    for e in rows:
        table.add_row(
            str(e["at"])[:19], e["actor"], e["action"], e["target"], e["address"], e["result"]
        )
    console.print(table)


def login(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Your user name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    sso: Annotated[
        bool,
        typer.Option(
            "--sso",
            help="Sign in through the identity provider: shows a code and an "
            "address to open on any device (no browser needed here).",
        ),
    ] = False,
    minutes: Annotated[int, typer.Option(min=1, max=24 * 60, help="Token lifetime.")] = 60,
) -> None:
    """Log in to the server at --url and print a short-lived token for MLGATE_TOKEN."""
    remote = remote_of(ctx)
    if remote is None:
        raise InvalidInput("login needs a server: mlgate --url http://HOST:PORT login --user NAME")
    if sso:
        if user is not None or password_stdin:
            raise InvalidInput(
                "--sso signs in as the provider says: leave out --user and the password"
            )
        out = device_login(
            lambda path, body: remote.call("POST", path, json=body), minutes=minutes,
            show=_show_code, notify=lambda note: print(note, file=sys.stderr, flush=True),
            expired=lambda message: Unauthenticated(message, code="expired_token"),
        )  # fmt: skip
    else:
        if user is None:
            raise InvalidInput("login needs --user NAME (or --sso to sign in through the provider)")
        password = sys.stdin.readline().rstrip("\n") if password_stdin else _ask("Password")
        out = remote.call(
            "POST",
            "/v1/auth/login",
            json={"name": user, "password": password, "ttl_minutes": minutes},
        )
    console.print(f"Logged in as {out['user']} until {out['expires_at']}. Use it with:")
    print(f"export MLGATE_TOKEN={out['token']}")


def _show_code(started: dict[str, Any]) -> None:
    # stderr, so that `eval "$(mlgate --url … login --sso)"` keeps only the export line
    where = started.get("verification_uri_complete") or started["verification_uri"]
    print(
        f"To sign in, open {started['verification_uri']} on any device and enter the code "
        f"{started['user_code']}\n(or open {where})\nWaiting for the sign-in "
        f"(the code expires in {int(started['expires_in']) // 60} min)...",
        file=sys.stderr,
        flush=True,
    )


def whoami(ctx: typer.Context) -> None:
    """Who the token (MLGATE_TOKEN) belongs to on the server at --url, and what it may do."""
    remote = _need_remote(ctx)
    me = remote.call("GET", "/v1/auth/me")
    console.print(
        f"{me['kind']}:{me['name']}{' (admin)' if me['admin'] else ''} with a {me['credential']}"
    )
    console.print(f"scopes: {', '.join(me['scopes'])}")
    for g in me["grants"]:
        console.print(f"  {g['role']} of {g['target']}")


def logout(ctx: typer.Context) -> None:
    """End the login session of the token in MLGATE_TOKEN."""
    _need_remote(ctx).call("POST", "/v1/auth/logout")
    console.print("Logged out.")


# ---- helpers ----------------------------------------------------------------------------------


def _need_remote(ctx: typer.Context) -> Remote:
    remote = remote_of(ctx)
    if remote is None:
        raise InvalidInput("this command talks to a server: add --url http://HOST:PORT")
    return remote


def _password(generate: bool, from_stdin: bool, none: bool) -> str | None:
    if sum((generate, from_stdin, none)) > 1:
        raise InvalidInput("choose one of --generate, --password-stdin and --no-password")
    if none:
        return None
    if generate:
        return secrets.token_urlsafe(18)
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for a password: use --password-stdin or --generate")
    first = _ask("Password")
    if _ask("Again") != first:
        raise InvalidInput("the two passwords differ")
    return first


def _set_password(
    ctx: typer.Context, kind: OwnerKind, name: str, generate: bool, from_stdin: bool
) -> None:
    password = _password(generate, from_stdin, False)
    assert password is not None
    remote = remote_of(ctx)
    if remote:
        remote.call("PUT", f"/v1/{kind}s/{name}/password", json={"password": password})
    else:
        s = services(ctx)
        setter = s.access.set_password if kind == "user" else s.access.set_consumer_password
        setter(name, password, by=None)
    if kind == "user":
        console.print(f"Password of {name} set; their sessions ended.")
    else:
        console.print(f"Portal password of {name} set; it logs in at /portal.")
    if generate:
        print(password)


def _ask(prompt: str) -> str:
    value: str = typer.prompt(prompt, hide_input=True)
    return value


def _subject(user: str | None, consumer: str | None) -> tuple[OwnerKind, str]:
    if (user is None) == (consumer is None):
        raise InvalidInput("say who: --user NAME or --consumer NAME")
    return ("user", user) if user is not None else ("consumer", consumer or "")


def _grantee(user: str | None, consumer: str | None, group: str | None) -> tuple[SubjectKind, str]:
    if group is None:
        return _subject(user, consumer)
    if user is not None or consumer is not None:
        raise InvalidInput("say who: one of --user NAME, --consumer NAME or --group NAME")
    return "group", group


def _set_disabled(ctx: typer.Context, what: str, name: str, disabled: bool) -> None:
    remote = remote_of(ctx)
    verb = "disable" if disabled else "enable"
    if remote:
        remote.call("POST", f"/v1/{what}/{name}/{verb}")
    else:
        s = services(ctx)
        if what == "users":
            s.access.set_user_disabled(name, disabled=disabled, by=None)
        else:
            s.access.set_consumer_disabled(name, disabled=disabled, by=None)
    console.print(f"{verb.capitalize()}d {what[:-1]} {name}")


def _local_users(ctx: typer.Context) -> list[User]:
    return services(ctx).access.users(by=None)


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)


def _user(u: User) -> dict[str, Any]:
    return {
        "name": u.name,
        "admin": u.is_admin,
        "can_log_in": u.password_hash is not None,
        "single_sign_on": u.sso_subject is not None,
        "groups": list(u.groups),
        "created_at": u.created_at.isoformat(),
        "disabled": u.disabled_at is not None,
    }


def _consumer(c: Consumer) -> dict[str, Any]:
    return {
        "name": c.name,
        "description": c.description,
        "created_at": c.created_at.isoformat(),
        "disabled": c.disabled_at is not None,
        "billing_id": c.billing_id,
    }


def _grant(g: Grant) -> dict[str, Any]:
    return {
        "id": g.id,
        "subject_kind": g.subject_kind,
        "subject": g.subject,
        "target": str(g.target),
        "role": g.role,
        "created_by": g.created_by,
        "created_at": g.created_at.isoformat(),
    }


def _event(e: AuditEvent) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "address": e.address,
        "result": e.result,
    }
