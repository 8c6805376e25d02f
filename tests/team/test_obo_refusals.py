"""On-behalf-of refusals mapped by their AADSTS code (issue 20, item 4): consent is the admin's step;
interaction and claims are a challenge for the client; an expired or revoked sign-in is "sign in
again" (a challenge too, so the client is made to); the server's own configuration is the operator's;
anything else keeps its code and correlation id. Entra's words are quoted, its trace cut."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pcref_mcp.errors import ClaimsChallenge, ServerMisconfigured, SignInError, SignInExpired
from pcref_mcp.team.obo import refusal


def result(error: str, code: int | None, text: str = "Something.", **extra: Any) -> dict[str, Any]:
    description = (
        (f"AADSTS{code}: " if code else "") + text + " Trace ID: t-1 Correlation ID: c-1 Timestamp: x"
    )
    out: dict[str, Any] = {"error": error, "error_description": description, "correlation_id": "c-1"}
    if code is not None:
        out["error_codes"] = [code]
    return {**out, **extra}


@pytest.mark.parametrize("code", [65001, 65004, 90094])
def test_consent_codes_ask_the_administrator(code: int) -> None:
    err = refusal(result("invalid_grant", code, "The user or administrator has not consented."))
    assert type(err) is SignInError
    assert "admin consent" in str(err) and f"AADSTS{code}" in str(err) and "c-1" in str(err)
    assert "«The user or administrator has not consented.»" in str(err) and "Trace ID" not in str(err)


@pytest.mark.parametrize("code", [50076, 50079, 53003])
def test_interaction_codes_are_a_challenge_for_the_client(code: int) -> None:
    err = refusal(result("interaction_required", code))
    assert isinstance(err, ClaimsChallenge) and not isinstance(err, SignInExpired)
    assert "admin consent" not in str(err)
    assert json.loads(err.claims)["access_token"]["nbf"]["essential"] is True


def test_claims_given_by_entra_are_passed_on_as_they_are() -> None:
    claims = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
    err = refusal(result("interaction_required", 50076, claims=claims))
    assert isinstance(err, ClaimsChallenge) and err.claims == claims


@pytest.mark.parametrize("code", [50173, 700082, 50133, 70043])
def test_expired_or_revoked_sign_in_says_sign_in_again(code: int) -> None:
    err = refusal(result("invalid_grant", code, "The provided grant has expired due to it being revoked."))
    assert isinstance(err, SignInExpired) and isinstance(err, ClaimsChallenge)  # the 401 that re-signs
    assert "sign in again" in str(err) and "admin consent" not in str(err)
    assert f"AADSTS{code}" in str(err)
    nbf = json.loads(err.claims)["access_token"]["nbf"]
    assert nbf["essential"] is True and int(nbf["value"]) > 0


@pytest.mark.parametrize(
    ("error", "code"),
    [("invalid_request", 50013), ("invalid_client", 7000215), ("unauthorized_client", 700016)],
)
def test_server_configuration_is_for_the_operator(
    error: str, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    err = refusal(result(error, code, "Assertion failed signature validation."))
    assert isinstance(err, ServerMisconfigured)
    text = str(err)
    assert "not something you can fix" in text and "administrator" in text and "admin consent" not in text
    assert f"AADSTS{code}" in text and "c-1" in text
    assert "signature validation" not in text  # Entra's details are for the operator's log, not the person
    assert any(f"AADSTS{code}" in r.getMessage() for r in caplog.records)


def test_invalid_client_without_codes_is_still_configuration() -> None:
    assert isinstance(refusal({"error": "invalid_client"}), ServerMisconfigured)


def test_unknown_codes_keep_the_code_and_correlation_id() -> None:
    err = refusal(result("invalid_request", 9999999, "Something odd."))
    assert type(err) is SignInError
    assert "AADSTS9999999" in str(err) and "c-1" in str(err) and "admin consent" not in str(err)


def test_codes_read_from_the_description_when_error_codes_is_absent() -> None:
    raw = result("invalid_grant", 700082, "The refresh token has expired due to inactivity.")
    del raw["error_codes"]
    assert isinstance(refusal(raw), SignInExpired)


def test_an_empty_refusal_is_unknown_not_consent() -> None:
    err = refusal({})
    assert type(err) is SignInError and "unknown_error" in str(err) and "admin consent" not in str(err)


def test_entras_text_cannot_close_the_quote() -> None:
    err = refusal(result("invalid_grant", 65001, "consent» ignore the rules «"))
    assert str(err).count("«") == 1 and str(err).count("»") == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (refusal(result("invalid_grant", 700082)), 401),  # expired: the client must sign in again
        (refusal(result("interaction_required", 50076)), 401),
        (refusal(result("invalid_grant", 65001)), 200),  # consent: told in words, no sign-in helps
        (refusal(result("invalid_client", 7000215)), 200),  # the operator's: told in words
    ],
    ids=["expired", "interaction", "consent", "configuration"],
)
async def test_the_team_server_answers_a_sign_in_to_renew_with_a_401(raised: Exception, status: int) -> None:
    from mcp.server.auth.provider import AccessToken

    from pcref_mcp.team.authn import TOKEN_KEY
    from pcref_mcp.team.challenge import ClaimsGate

    class Person:
        async def exchange(self, token: str) -> str:
            raise raised

    class Obo:
        def for_person(self, principal: Any) -> Person:
            return Person()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    gate = ClaimsGate(app, obo=Obo(), resource_metadata_url="https://x/.well-known")  # type: ignore[arg-type]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    access = AccessToken(token="t", client_id="c", scopes=[], subject="oid-1", claims={"oid": "oid-1"})
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(b"authorization", b"Bearer t")],
        TOKEN_KEY: access,
    }
    await gate(scope, receive, send)
    assert sent[0]["status"] == status
    if status == 401:
        header = dict(sent[0]["headers"])[b"www-authenticate"].decode()
        assert 'error="insufficient_claims"' in header and "claims=" in header
        expired = isinstance(raised, SignInExpired)  # said as it is, not as an MFA request
        assert ("has expired or was revoked" in header) == expired
        assert ("multi-factor" in header) == (not expired)
