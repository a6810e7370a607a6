"""`mlgate --url … login --sso` and `Client.login_sso` against `mlgate serve` on a socket,
signing in through an identity provider with the device flow (RFC 8628): the CLI runs as a
real process and polls while the test plays the user's browser step at the provider
(tests/device_provider.py, on a thread of this process). The server holds the client secret.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlgate.client import AsyncClient, Client
from mlgate.client import errors as client_errors
from tests.device_provider import DeviceProvider, running
from tests.e2e.helpers import env_for, mlgate, running_server

PEOPLE = {
    "s-alice": {"preferred_username": "alice", "groups": ["mlgate-admins"]},
    "s-bob": {"preferred_username": "bob", "groups": ["data-science"]},
}
CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")


@pytest.fixture(scope="module")
def provider() -> Iterator[DeviceProvider]:
    with running(DeviceProvider(users=PEOPLE)) as made:
        yield made


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, provider: DeviceProvider) -> Iterator[str]:
    home = tmp_path_factory.mktemp("device") / "home"
    env = {
        "MLGATE_OIDC_ISSUER": provider.issuer, "MLGATE_OIDC_CLIENT_ID": "mlgate",
        "MLGATE_OIDC_CLIENT_SECRET": "s3cret", "MLGATE_OIDC_ADMIN_GROUPS": "mlgate-admins",
    }  # fmt: skip
    with running_server(home, **env) as base:
        yield base


def approve(provider: DeviceProvider, code: str, sub: str, decision: str = "approved") -> None:
    """The user's browser step, on another device: the verification page, the code, approve."""
    page = httpx.get(f"{provider.issuer}/device")
    assert page.status_code == 200 and "<form" in page.text
    answer = httpx.post(f"{provider.issuer}/device",
                        data={"user_code": code, "sub": sub, "decision": decision})  # fmt: skip
    assert answer.status_code == 200, answer.text


def cli_login(base: str, tmp_path: Path, provider: DeviceProvider, sub: str, decision: str) -> Any:
    process = subprocess.Popen(
        [sys.executable, "-m", "mlgate", "--url", base, "login", "--sso", "--minutes", "30"],
        env=env_for(tmp_path / "cli"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        shown = process.stderr.readline()
        match = CODE.search(shown)
        assert match, shown
        assert f"open {provider.issuer}/device" in shown
        approve(provider, match.group(1), sub, decision)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out, shown + err


def test_the_cli_signs_in_with_a_code_and_gets_a_session(
    served: str, provider: DeviceProvider, tmp_path: Path
) -> None:
    code, out, err = cli_login(served, tmp_path, provider, "s-alice", "approved")
    assert code == 0, err
    token = re.search(r"^export MLGATE_TOKEN=(mls_\S+)$", out, re.MULTILINE)
    assert token, out
    assert "Logged in as alice" in out
    me = mlgate(tmp_path / "cli", "--url", served, "whoami", MLGATE_TOKEN=token.group(1))
    assert "user:alice (admin) with a login session" in me.stdout


def test_the_cli_says_clearly_when_the_sign_in_is_denied(
    served: str, provider: DeviceProvider, tmp_path: Path
) -> None:
    code, out, err = cli_login(served, tmp_path, provider, "s-bob", "denied")
    assert code == 1 and "MLGATE_TOKEN" not in out
    assert "the sign-in was denied at the identity provider" in err
    assert "Traceback" not in err


def test_the_python_client_signs_in_and_calls_as_its_user(
    served: str, provider: DeviceProvider
) -> None:
    with Client(served) as client:
        with pytest.raises(client_errors.Unauthenticated):
            client.models()
        out = client.login_sso(show=lambda s: approve(provider, s["user_code"], "s-bob"))
        assert out["user"] == "bob" and out["token"].startswith("mls_")
        assert client.models() == []  # bob's session now rides on every call
        with pytest.raises(client_errors.PermissionDenied):  # his group is no admin's
            client._get("/v1/users")


def test_the_async_client_signs_in_too(served: str, provider: DeviceProvider) -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with AsyncClient(served) as client:
            out = await client.login_sso(
                show=lambda s: approve(provider, s["user_code"], "s-alice"), minutes=5
            )
            return out, await client.models()

    out, models = asyncio.run(run())
    assert out["user"] == "alice" and models == []
