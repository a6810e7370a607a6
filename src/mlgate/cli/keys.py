"""`mlgate keys ...`: API keys of users and consumers."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlgate.access.model import ApiKey, OwnerKind
from mlgate.access.service import KeyFinding
from mlgate.cli.context import console, services
from mlgate.cli.remote import remote_of
from mlgate.errors import InvalidInput

app = typer.Typer(help="Create, list, rotate, revoke and check API keys.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what will use the key, e.g. billing-service.")],
    user: Annotated[str | None, typer.Option(help="The user who owns the key.")] = None,
    consumer: Annotated[str | None, typer.Option(help="The consumer who owns the key.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="What the key may do: predict (default), generate, read, train, admin; "
            "repeatable. What it may do it on comes from its owner's grants."
        ),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="A lifetime (30d, 12h, 2w) or an ISO date/time (UTC).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Restrict the key to MODEL, MODEL@ALIAS or MODEL@VERSION; repeatable."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print the token alone, e.g. for export MLGATE_KEY=$(...)."
        ),
    ] = False,
) -> None:
    """Create an API key. Its token is printed once and stored nowhere."""
    remote = remote_of(ctx)
    owner_kind, owner = _owner(user, consumer, required=remote is None)
    scopes = list(scope or ("predict",))
    if remote:
        body: dict[str, Any] = {"name": name, "scopes": scopes, "targets": list(only or ())}
        if owner_kind:
            body |= {"owner_kind": owner_kind, "owner": owner}
        if expires:
            body["expires_at"] = _expiry(expires, datetime.now(UTC)).isoformat()
        made = remote.call("POST", "/v1/keys", json=body)
        prefix, token, owned_by = (
            made["prefix"],
            made["token"],
            f"{made['owner_kind']}:{made['owner']}",
        )
    else:
        s = services(ctx)
        assert owner_kind is not None
        key, token = s.access.create_key(
            by=None,
            owner_kind=owner_kind,
            owner=owner,
            name=name,
            scopes=scopes,
            expires_at=_expiry(expires, s.clock()) if expires else None,
            targets=only or (),
        )
        prefix, owned_by = key.prefix, f"{owner_kind}:{owner}"
    if not quiet:
        console.print(
            f"Created key [bold]{prefix}[/] ({name}) for {owned_by}. "
            "Keep this token; it is shown once:"
        )
    print(token)
    if not quiet and owner_kind == "consumer" and remote is None:
        from mlgate.cli.access import next_steps

        console.print(next_steps(services(ctx), owner))


@app.command("list")
def list_(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    consumer: Annotated[str | None, typer.Option(help="Only this consumer's keys.")] = None,
) -> None:
    """List API keys by prefix (never their secrets)."""
    owner_kind, owner = _owner(user, consumer, required=False)
    remote = remote_of(ctx)
    if remote:
        params = {"owner_kind": owner_kind, "owner": owner} if owner_kind else None
        rows = remote.call("GET", "/v1/keys", params=params)
    else:
        s = services(ctx)
        found = s.access.keys(by=None, owner_kind=owner_kind, owner=owner or None)
        rows = [_row(k, s.clock()) for k in found]
    if not rows:
        console.print("No API keys yet. Create one with `mlgate keys create --name NAME ...`.")
        return
    restricted = any(k["targets"] for k in rows)
    table = Table()
    for column in ("prefix", "name", "owner", "scopes", *(["only"] if restricted else [])):
        table.add_column(column, overflow="fold")
    for column in ("created", "expires", "last used"):
        table.add_column(column, overflow="fold")
    table.add_column("state", no_wrap=True, min_width=7)
    rotating = any(k.get("previous_until") for k in rows)
    if rotating:
        table.add_column("old secret until", overflow="fold")
    for k in rows:
        owner = f"{k['owner_kind']}:{k['owner']}" if k["owner"] else "(none: made before owners)"
        only = [",".join(k["targets"])] if restricted else []
        table.add_row(
            k["prefix"],
            k["name"],
            owner,
            ",".join(k["scopes"]),
            *only,
            str(k["created_at"])[:10],
            str(k["expires_at"] or "")[:16],
            str(k["last_used_at"] or "")[:16],
            k["state"],
            *([str(k.get("previous_until") or "")[:16]] if rotating else []),
        )
    console.print(table)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's prefix (mlg_...) or its name.")],
    overlap: Annotated[
        str,
        typer.Option(
            help="How long the old secret keeps working beside the new one: 0 to 30d "
            "(e.g. 30m, 24h, 7d; 0 stops it at once)."
        ),
    ] = "24h",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print the new token alone.")
    ] = False,
) -> None:
    """Give a key a new secret; its id, name, scopes and usage stay. The new token is printed
    once; the old one keeps working until the overlap ends."""
    length = _overlap(overlap)
    remote = remote_of(ctx)
    if remote:
        made = remote.call(
            "POST", f"/v1/keys/{key}/rotate", json={"overlap_seconds": int(length.total_seconds())}
        )
        row, token = made, made["token"]
    else:
        s = services(ctx)
        rotated, token = s.access.rotate_key(key, by=None, overlap=length)
        row = _row(rotated, s.clock())
    if not quiet:
        until = row.get("previous_until")
        old = f"the old secret works until {until[:16]} UTC" if until else "the old secret stopped"
        expires = f"; the key expires {row['expires_at'][:16]} UTC" if row["expires_at"] else ""
        console.print(
            f"Rotated key [bold]{row['prefix']}[/] ({row['name']}): {old}{expires}. "
            "Keep the new token; it is shown once:"
        )
    print(token)


@app.command("check")
def check(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A file, - for standard input, or the text itself.")
    ],
    offline: Annotated[
        bool, typer.Option(help="Only say whether each key is well-formed; ask no database.")
    ] = False,
) -> None:
    """Find mlgate keys in a file or a diff and say whether each works, without printing a
    secret. Exits 1 if one works (for pre-commit hooks and CI), 0 otherwise."""
    if source == "-":
        text = sys.stdin.read()
    elif len(source) < 4096 and Path(source).is_file():
        text = Path(source).read_text(errors="replace")
    elif "mlg_" not in source and not any(c.isspace() for c in source):
        # one word, no key: a mistyped file name, which must not pass a pre-commit hook
        raise InvalidInput(
            f"{source!r} is not a file and holds no mlgate key; give a file, - for standard "
            "input, or the text itself"
        )
    else:
        text = source
    remote = remote_of(ctx)
    if remote and not offline:
        findings = remote.call("POST", "/v1/keys/check", json={"text": text})
    else:
        findings = [_finding(f) for f in services(ctx).access.check_keys(text, offline=offline)]
    if not findings:
        console.print("No mlgate keys found.")
        return
    for f in findings:
        who = f" key {f['name']!r} of {f['owner']}" if f.get("name") else ""
        until = f" until {f['until'][:16]} UTC" if f.get("until") else ""
        console.print(
            f"line {f['line']}: {f['masked']}  {_SHAPES[f['shape']]}, {f['status']}{who}{until}",
            markup=False,
        )
    live = sum(1 for f in findings if str(f["status"]).startswith("live"))
    if live:
        console.print(f"{live} working key(s) found: revoke or rotate them (`mlgate keys rotate`).")
        raise typer.Exit(1)


_SHAPES = {
    "checksummed": "well-formed",
    "legacy": "old format (no checksum)",
    "bad_checksum": "checksum does not match",
    "malformed": "malformed",
}


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's prefix (mlg_...) or its name.")],
) -> None:
    """Revoke an API key; calls made with it are refused from now on, on every worker."""
    remote = remote_of(ctx)
    if remote:
        revoked = remote.call("DELETE", f"/v1/keys/{key}")
    else:
        s = services(ctx)
        revoked = _row(s.access.revoke_key(key, by=None), s.clock())
    console.print(f"Revoked key {revoked['prefix']} ({revoked['name']})")


def _owner(
    user: str | None, consumer: str | None, *, required: bool
) -> tuple[OwnerKind | None, str]:
    if user is not None and consumer is not None:
        raise InvalidInput("a key has one owner: give --user or --consumer, not both")
    if user is not None:
        return "user", user
    if consumer is not None:
        return "consumer", consumer
    if required:
        raise InvalidInput(
            "say whose key it is: --user NAME or --consumer NAME "
            "(`mlgate users create` / `mlgate consumers create` make them)"
        )
    return None, ""


def _expiry(value: str, now: datetime) -> datetime:
    match = _DURATION.match(value.strip())
    if match:
        try:
            return now + _length(match)
        except OverflowError:
            raise InvalidInput(
                f"--expires {value!r} lies past the year 9999; give a lifetime such as 365d"
            ) from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--expires {value!r} is neither a lifetime (30d, 12h, 2w) nor an ISO date/time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _overlap(value: str) -> timedelta:
    value = value.strip()
    if value == "0":
        return timedelta(0)
    match = _DURATION.match(value)
    if match is None:
        raise InvalidInput(f"--overlap {value!r} is not a length of time like 30m, 24h or 7d")
    try:
        return _length(match)
    except OverflowError:  # far past the 30 days allowed: say so, as for 31d
        return timedelta.max


def _length(match: re.Match[str]) -> timedelta:
    """30m, 24h, 7d or 2w as a timedelta (OverflowError when no timedelta holds it)."""
    return timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})


def _finding(f: KeyFinding) -> dict[str, Any]:
    return {
        "line": f.line,
        "masked": f.masked,
        "shape": f.shape,
        "status": f.status,
        "name": f.name,
        "owner": f.owner,
        "until": f.until.isoformat() if f.until else None,
    }


def _row(k: ApiKey, now: datetime) -> dict[str, Any]:
    return {
        "prefix": k.prefix,
        "name": k.name,
        "owner_kind": k.owner_kind,
        "owner": k.owner,
        "scopes": list(k.scopes),
        "targets": [str(t) for t in k.targets],
        "created_at": k.created_at.isoformat(),
        "expires_at": k.expires_at.isoformat() if k.expires_at else None,
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        "state": k.state(now),
        "previous_until": (
            k.previous_until.isoformat() if k.previous_until and k.old_secret_works(now) else None
        ),
    }
