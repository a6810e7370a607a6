"""Single sign-on benchmark: what a provider-issued JWT bearer costs against an mlgate key.

    .venv/bin/python bench/sso.py [--calls 2000] [--database-url postgresql+psycopg://...]

In one run, on one metadata database (SQLite in a temporary home by default), with a provider's
key set held in memory (ES256 and RS256 keys made here), it times:

* the token check alone (sso/tokens.py `verify`: header, signature, claims), first sight of
  each token: every call a fresh token;
* the same token again: the checked-token cache (a dict under the whole token, until `exp`);
* the authentication use case (`services.access.authenticate`, no principal cache in front)
  for a fresh JWT, a repeated JWT (cached check + the service user's row and grants), and an
  mlgate key (looked up by id, digest compared, owner and grants read).

It prints p50 and p99 in microseconds and the ratios against the mlgate key. Issue 36.
Never part of the tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.keys import timed  # p50 and p99 over calls, the same measure as the key figures
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from mlgate.bootstrap import bootstrap
from mlgate.settings import Settings
from mlgate.sso import tokens
from mlgate.sso.service import SingleSignOn

ISSUER, AUDIENCE = "https://idp.example.com", "https://mlgate.example.com"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp home")
    args = parser.parse_args()
    n = args.calls
    keys: dict[str, Any] = {
        "ES256": ECKey.generate_key("P-256", parameters={"kid": "es"}),
        "RS256": RSAKey.generate_key(2048, parameters={"kid": "rs"}),
    }
    key_set = KeySet(list(keys.values())).as_dict(private=False)

    def token(alg: str, i: int) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ci-bot", "client_id": "ci-bot",
                  "iat": now, "exp": now + 600, "jti": f"{alg}-{i}"}  # fmt: skip
        return jwt.encode({"alg": alg, "kid": keys[alg].kid}, claims, keys[alg])

    with tempfile.TemporaryDirectory() as tmp:
        env = {"MLGATE_HOME": str(Path(tmp) / "home"), "MLGATE_OIDC_ISSUER": ISSUER,
               "MLGATE_OIDC_CLIENT_ID": "mlgate", "MLGATE_OIDC_AUDIENCE": AUDIENCE}  # fmt: skip
        if args.database_url:
            env["MLGATE_DATABASE_URL"] = args.database_url
        services = bootstrap(Settings.from_env(env))
        try:
            built = services.sso
            assert built is not None
            jwks = tokens.Jwks(lambda: key_set)
            secret = services.server_secret
            sso = SingleSignOn(rules=built.rules, jwks=jwks, uow=services.uow,
                               clock=services.now, server_secret=secret)  # fmt: skip
            services.sso = sso
            name = "ci-bot"  # the tokens' client_id: the service user they act as
            services.access.create_user(by=None, name=name, password=None, is_admin=False)
            _, key = services.access.create_key(by=None, owner_kind="user", owner=name,
                                                name="bench")  # fmt: skip
            auth = services.access.authenticate
            now = int(time.time())

            def check(raw: str) -> Callable[[], object]:
                return lambda: tokens.verify(raw, jwks, issuer=ISSUER, audience=AUDIENCE,
                                             now=now, leeway=60)  # fmt: skip

            timed([lambda: auth(f"Bearer {key}")] * 50)  # warm up: imports, the pool
            found: dict[str, tuple[float, float]] = {}
            for alg in keys:
                fresh = [token(alg, i) for i in range(n)]
                found[f"{alg} check, first"] = timed([check(t) for t in fresh])
                found[f"{alg} check, cached"] = timed(
                    [lambda t=fresh[0]: sso.checked.get(t, now)] * n  # type: ignore[misc]
                )
                again = [token(alg, n + i) for i in range(n)]
                found[f"{alg} authenticate, first"] = timed(
                    [lambda t=t: auth(f"Bearer {t}") for t in again]  # type: ignore[misc]
                )
                found[f"{alg} authenticate, cached"] = timed(
                    [lambda t=again[0]: auth(f"Bearer {t}")] * n  # type: ignore[misc]
                )
            found["mlgate key authenticate"] = timed([lambda: auth(f"Bearer {key}")] * n)
            database = services.engine.dialect.name if services.engine else "memory"
        finally:
            services.close()
    print(f"bearer validation, {n} calls each, metadata on {database}:")
    base = found["mlgate key authenticate"][0]
    for what, (p50, p99) in found.items():
        print(f"  {what:<28} p50 {p50:9.1f} us   p99 {p99:9.1f} us   {p50 / base:6.2f}x the key")


if __name__ == "__main__":
    main()
