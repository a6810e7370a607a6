"""Reading request bodies within limits, and decoding them as JSON."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from mlgate.errors import MalformedRequest, PayloadTooLarge, UnsupportedFormat


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)


def decode_json(raw: bytes, content_type: str | None) -> Any:
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedFormat(
            f"the body is {media_type[:80]}; send JSON with Content-Type: application/json"
        )
    if not raw.strip():
        raise MalformedRequest('the body is empty; send JSON such as {"rows": [{...}]}')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(
            f"the body is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "check quoting and commas"
        ) from None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than the {max_bytes:,} bytes allowed; send fewer rows per request"
    )
