"""Authenticate before reading, at the ASGI level where it can be observed exactly: a request without a
good token is answered 401 from its headers and its body is never received; a signed-in client that
stalls its body gets 408 instead of holding the request; a good request reaches the app whole, with
its verified token. (The same over a real socket, measured: tests/reliability/test_http_uploads.py.)"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp.server.auth.provider import AccessToken

from pcref_mcp.team.authn import TOKEN_KEY, AuthenticateFirst
from pcref_mcp.team.challenge import ClaimsGate

METADATA = "http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp"
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
GOOD = AccessToken(token="good", client_id="c", scopes=["s"], expires_at=None, subject="oid-1")


class Verifier:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def verify_token(self, token: str) -> AccessToken | None:
        self.asked.append(token)
        if token == "stale-token-0042":  # signed, but expired (past the verifier's leeway)
            return GOOD.model_copy(update={"token": token, "expires_at": 1})
        return GOOD if token == "good" else None


class App:
    """The app behind the gates: records what reached it and reads the whole body."""

    def __init__(self) -> None:
        self.scopes: list[Any] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Client:
    """One request: headers, then a body that arrives in 1 MB worth of chunks, or never (``stall``)."""

    def __init__(self, *, stall: bool = False) -> None:
        self.stall = stall
        self.received = 0  # how often the server side asked for body
        self.sent: list[Any] = []

    async def receive(self) -> Any:
        self.received += 1
        if self.stall:
            await anyio.sleep_forever()
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


def gates(app: App, verifier: Verifier, *, body_seconds: float = 30.0) -> Any:
    claims = ClaimsGate(app, obo=None, resource_metadata_url=METADATA, body_seconds=body_seconds)  # type: ignore[arg-type]
    return AuthenticateFirst(claims, verifier=verifier, resource_metadata_url=METADATA)  # type: ignore[arg-type]


def scope(authorization: str | None, method: str = "POST", path: str = "/mcp") -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000000")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers}


@pytest.mark.anyio
@pytest.mark.parametrize("authorization", ["Bearer forged.jwt.token", "Bearer stale-token-0042"])
async def test_a_bad_token_is_refused_without_reading_the_body(authorization: str) -> None:
    app, verifier, client = App(), Verifier(), Client(stall=True)
    await gates(app, verifier)(scope(authorization), client.receive, client.send)
    assert client.received == 0  # not one byte of body was asked for
    assert app.scopes == []
    assert client.status == 401
    assert client.headers[b"www-authenticate"] == (
        b'Bearer error="invalid_token", error_description="The access token is not valid for this server '
        b'(or has expired).", resource_metadata="' + METADATA.encode() + b'"'
    )
    assert client.headers[b"connection"] == b"close"
    assert authorization[7:].encode() not in b"".join(m.get("body", b"") for m in client.sent)


@pytest.mark.anyio
@pytest.mark.parametrize("authorization", [None, "Basic YWRhOnNlY3JldA==", "Bearer", "Bearer   "])
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_no_credentials_get_401_without_an_error_code_and_without_reading(
    authorization: str | None, method: str
) -> None:
    app, verifier, client = App(), Verifier(), Client(stall=True)
    await gates(app, verifier)(scope(authorization, method), client.receive, client.send)
    assert client.received == 0 and app.scopes == [] and verifier.asked == []
    assert client.status == 401
    assert client.headers[b"www-authenticate"] == f'Bearer resource_metadata="{METADATA}"'.encode()


@pytest.mark.anyio
async def test_a_signed_in_client_that_stalls_its_body_gets_408() -> None:
    app, verifier, client = App(), Verifier(), Client(stall=True)
    await gates(app, verifier, body_seconds=0.05)(scope("Bearer good"), client.receive, client.send)
    assert client.received == 1 and app.scopes == []
    assert client.status == 408
    assert client.headers[b"connection"] == b"close"


@pytest.mark.anyio
async def test_a_good_request_reaches_the_app_whole_with_its_verified_token() -> None:
    app, verifier, client = App(), Verifier(), Client()
    await gates(app, verifier)(scope("Bearer good"), client.receive, client.send)
    assert client.status == 200
    assert app.bodies == [BODY]
    assert app.scopes[0][TOKEN_KEY] is GOOD
    assert verifier.asked == ["good"]


@pytest.mark.anyio
async def test_other_paths_and_preflights_pass_untouched() -> None:
    for request in (scope(None, path="/.well-known/oauth-protected-resource/mcp"), scope(None, "OPTIONS")):
        app, verifier, client = App(), Verifier(), Client()
        await gates(app, verifier)(request, client.receive, client.send)
        assert client.status == 200 and len(app.scopes) == 1 and verifier.asked == []
