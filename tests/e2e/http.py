"""httpx's calls with the suite's timeout.

httpx waits 5 s by default. A test server shares two cores with the suite's other workers and
their servers; on a loaded machine a first `/openapi.json` (0.3–0.6 s to build when quiet) once
took longer than that, and the run failed on a read timeout that said nothing about mlgate.
Every e2e call goes through here instead, with one generous limit: a server that truly hangs
still fails the test, with the same `httpx.ReadTimeout`.
"""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT = 30.0


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return httpx.request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> httpx.Response:
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return request("DELETE", url, **kwargs)


def Client(**kwargs: Any) -> httpx.Client:
    kwargs.setdefault("timeout", TIMEOUT)
    return httpx.Client(**kwargs)
