"""What every command shares: the console and the Services, built on first use."""

from __future__ import annotations

import typer
from rich.console import Console

from mlgate.bootstrap import Services, bootstrap
from mlgate.errors import InvalidInput
from mlgate.settings import Settings

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def services(ctx: typer.Context) -> Services:
    """The Services for this invocation: those a test passed as `obj`, else built from the env."""
    root = ctx.find_root()
    remote = root.meta.get("remote")
    if remote is not None and root.obj is None:
        # A command that works on this machine's home was asked to work on a server: doing
        # the local thing instead (an empty home, or another one) would answer the wrong question.
        raise InvalidInput(
            f"`{ctx.command_path}` works on this machine's home ({Settings.from_env().home}), "
            f"not against --url {remote.url}: run it on the server's machine, or use the "
            f"server's API ({remote.url.rstrip('/')}/docs). Over --url: users, consumers, "
            "keys, grants, audit, login and batches."
        )
    if root.obj is None:
        built = bootstrap(Settings.from_env())
        root.obj = built
        root.call_on_close(built.close)
    assert isinstance(root.obj, Services)
    return root.obj
