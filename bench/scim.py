"""SCIM benchmark: what a provider's lookups cost as the team grows.

    .venv/bin/python bench/scim.py [--users 2000] [--calls 200] [--database-url postgresql+psycopg://...]

Providers ask `GET /Users?filter=userName eq "…"` before every change they make. In one run, on
one metadata database (SQLite in a temporary home by default) holding `--users` provisioned
users in 20 groups, it times, through the use case the route calls (scim/service.py, no HTTP):

* `userName eq "…"`: the one indexed read the service does for that filter;
* `externalId eq "…"`: the same answer through the general filter, every record read and
  matched (the baseline);
* a GET by id; a PATCH that deactivates a user and one that enables them again.

It prints p50 and p99 in microseconds and the ratio of the indexed filter to the full scan.
Issue 36. Never part of the tests.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.keys import timed

from mlgate.bootstrap import bootstrap
from mlgate.scim.service import Provisioning
from mlgate.settings import Settings

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "https://mlgate.example.com/scim/v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp home")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MLGATE_HOME": str(Path(tmp) / "home")}
        if args.database_url:
            env["MLGATE_DATABASE_URL"] = args.database_url
        services = bootstrap(Settings.from_env(env))
        scim = Provisioning(services.uow, services.clock)
        ids = []
        for i in range(args.users):
            body = {"schemas": [USER], "userName": f"user{i:05d}", "externalId": f"ext-{i}",
                    "active": True, "name": {"givenName": f"Given{i}"}}  # fmt: skip
            made = scim.create("User", body, BASE, "bench")
            ids.append(made["id"])
        for g in range(20):
            members = [{"value": ids[i]} for i in range(g, args.users, 20)]
            scim.create("Group", {"schemas": [GROUP], "displayName": f"team-{g}",
                                  "members": members}, BASE, "bench")  # fmt: skip
        picks = [random.randrange(args.users) for _ in range(args.calls)]

        def listing(text: str) -> object:
            return scim.list("User", BASE, {"filter": text}, start=1, count=100)

        by_name = timed([lambda i=i: listing(f'userName eq "user{i:05d}"') for i in picks])
        by_external = timed([lambda i=i: listing(f'externalId eq "ext-{i}"') for i in picks])
        by_id = timed([lambda i=i: scim.get("User", ids[i], BASE, {}) for i in picks])
        off = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
        on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}
        deactivate = timed([lambda i=i: scim.patch("User", ids[i], off, BASE, "b") for i in picks])
        enable = timed([lambda i=i: scim.patch("User", ids[i], on, BASE, "b") for i in picks])
        services.close()
    database = args.database_url.split("://")[0] if args.database_url else "sqlite"
    print(f"{args.users} users in 20 groups, {database}, {args.calls} calls each")
    print(f"{'':36}{'p50 µs':>12}{'p99 µs':>12}")
    for label, (p50, p99) in (
        ('filter userName eq "…" (indexed)', by_name),
        ('filter externalId eq "…" (full scan)', by_external),
        ("GET /Users/{id}", by_id),
        ("PATCH active: false", deactivate),
        ("PATCH active: true", enable),
    ):
        print(f"{label:36}{p50:12.0f}{p99:12.0f}")
    print(f"full scan / indexed (p50): {by_external[0] / by_name[0]:.0f}x")


if __name__ == "__main__":
    main()
