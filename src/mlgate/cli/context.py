"""What every command shares: the console and the Services, built on first use."""

from __future__ import annotations

import typer
from rich.console import Console

from mlgate.bootstrap import Services, bootstrap
from mlgate.settings import Settings

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def services(ctx: typer.Context) -> Services:
    """The Services for this invocation: those a test passed as `obj`, else built from the env."""
    root = ctx.find_root()
    if root.obj is None:
        built = bootstrap(Settings.from_env())
        root.obj = built
        root.call_on_close(built.close)
    assert isinstance(root.obj, Services)
    return root.obj
