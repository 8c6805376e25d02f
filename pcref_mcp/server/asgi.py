"""What our pure-ASGI gates do by hand: answer with a small JSON body, read a body within a limit,
and hand a body they already read on to the app. One place for both, so every gate answers alike (length, no caching)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["TOO_LARGE", "read_body", "replaying", "send_json"]

TOO_LARGE = object()  # read_body: the body went past its limit


async def send_json(
    send: Any, status: int, answer: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A whole JSON response: ``answer`` as the body, never cached, with ``headers`` added."""
    body = json.dumps(answer).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any, limit: int) -> bytes | object | None:
    """The whole request body, read at most ``limit`` bytes far: :data:`TOO_LARGE` past that (the
    rest is never read), None when the client went away."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return TOO_LARGE
        if not message.get("more_body"):
            return body


def replaying(body: bytes, receive: Any, *, more_body: bool = False) -> Any:
    """A ``receive`` that gives the app ``body`` (read already) first, then whatever is left."""
    delivered = False

    async def replay() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": more_body}
        return await receive()

    return replay
